using Gateway.Api.Hosting;
using Microsoft.Extensions.Options;

try
{
    var app = GatewayHost.Build(args);
    await app.RunAsync();
    return 0;
}
catch (Exception ex) when (ex is OptionsValidationException or InvalidDataException)
{
    // A bad config never half-starts: say what is wrong, key by key, and stop.
    var problems = ex is OptionsValidationException validation ? validation.Failures : [ex.Message];
    await Console.Error.WriteLineAsync("The gateway cannot start; fix the config:");
    foreach (var problem in problems) await Console.Error.WriteLineAsync($"  - {problem}");
    return 2;
}

/// <summary>The entry point, visible to tests.</summary>
public partial class Program;
