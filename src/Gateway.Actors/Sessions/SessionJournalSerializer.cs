using System.Runtime.Serialization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Gateway.Agents;

namespace Gateway.Actors.Sessions;

/// <summary>
/// Writes what a durable session keeps (<see cref="ISessionJournalRecord"/>) as compact JSON with a short
/// manifest, through System.Text.Json's source generator: a stable, readable format of our own rather than
/// Akka's default serializer (Newtonsoft with .NET type names), whose bytes would break when a type moves.
/// A new field must be optional, so that older rows still read.
/// </summary>
public sealed class SessionJournalSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int SerializerId = 7301;
    private const string TurnManifest = "turn";
    private const string SnapshotManifest = "snapshot";

    /// <summary>Binds the journal's records to this serializer (added to the actor system's config).</summary>
    public const string Hocon = """
        akka.actor {
          serializers.gateway-session = "Gateway.Actors.Sessions.SessionJournalSerializer, Gateway.Actors"
          serialization-bindings { "Gateway.Actors.Sessions.ISessionJournalRecord, Gateway.Actors" = gateway-session }
          serialization-identifiers { "Gateway.Actors.Sessions.SessionJournalSerializer, Gateway.Actors" = 7301 }
        }
        """;

    public override int Identifier => SerializerId;

    public override byte[] ToBinary(object obj) => obj switch
    {
        TurnRecorded turn => JsonSerializer.SerializeToUtf8Bytes(new StoredTurn(turn.UserText, turn.ReplyText, turn.AtUnixMs),
            JournalJson.Default.StoredTurn),
        SessionSnapshot snapshot => JsonSerializer.SerializeToUtf8Bytes(
            new StoredSnapshot(snapshot.History.Select(entry => new StoredEntry(RoleName(entry.Role), entry.Text)).ToList(),
                snapshot.LastActiveUnixMs),
            JournalJson.Default.StoredSnapshot),
        _ => throw new ArgumentException($"{obj.GetType()} is not a session journal record", nameof(obj)),
    };

    public override string Manifest(object o) => o switch
    {
        TurnRecorded => TurnManifest,
        SessionSnapshot => SnapshotManifest,
        _ => throw new ArgumentException($"{o.GetType()} is not a session journal record", nameof(o)),
    };

    public override object FromBinary(byte[] bytes, string manifest)
    {
        switch (manifest)
        {
            case TurnManifest:
                var turn = JsonSerializer.Deserialize(bytes, JournalJson.Default.StoredTurn) ?? throw Unreadable(manifest);
                return new TurnRecorded(turn.User ?? "", turn.Reply ?? "", turn.At);
            case SnapshotManifest:
                var snapshot = JsonSerializer.Deserialize(bytes, JournalJson.Default.StoredSnapshot) ?? throw Unreadable(manifest);
                return new SessionSnapshot(
                    (snapshot.History ?? []).Select(entry => new ConversationEntry(Role(entry.Role), entry.Text ?? "")).ToArray(),
                    snapshot.At);
            default:
                throw new SerializationException($"Unknown session journal record '{manifest}'.");
        }
    }

    private static SerializationException Unreadable(string manifest) => new($"A session journal record '{manifest}' is empty.");

    private static string RoleName(ConversationRole role) => role == ConversationRole.User ? "user" : "assistant";

    private static ConversationRole Role(string? name) => name == "user" ? ConversationRole.User : ConversationRole.Assistant;
}

internal sealed record StoredTurn(
    [property: JsonPropertyName("user")] string? User,
    [property: JsonPropertyName("reply")] string? Reply,
    [property: JsonPropertyName("at")] long At);

internal sealed record StoredEntry(
    [property: JsonPropertyName("role")] string? Role,
    [property: JsonPropertyName("text")] string? Text);

internal sealed record StoredSnapshot(
    [property: JsonPropertyName("history")] List<StoredEntry>? History,
    [property: JsonPropertyName("at")] long At);

[JsonSerializable(typeof(StoredTurn))]
[JsonSerializable(typeof(StoredSnapshot))]
internal sealed partial class JournalJson : JsonSerializerContext;
