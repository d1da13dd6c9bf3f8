using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary>Nothing a client sent is lost or mixed up because other clients send at the same time.</summary>
[Collection(DefaultGatewayCollection.Name)]
public sealed class ConcurrentRequestTests(DefaultGatewayFixture gateway)
{
    [Fact]
    public async Task Every_one_of_many_concurrent_requests_is_answered_from_its_own_body()
    {
        using var client = gateway.Server.CreateClient();
        // Long enough bodies that Kestrel hands them over in pooled buffers that are then reused.
        var messages = Enumerable.Range(0, 400).Select(i => $"message {i} " + new string((char)('a' + i % 26), 2000)).ToList();

        var replies = await Task.WhenAll(messages.Select(message => ChatApi.CompleteAsync(client, ChatApi.Body(message))));

        for (var i = 0; i < messages.Count; i++) Assert.Equal(ChatApi.FreshReply(messages[i]), replies[i]);
    }
}
