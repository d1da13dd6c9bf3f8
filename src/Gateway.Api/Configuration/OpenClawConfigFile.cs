using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Gateway.Api.Configuration;

/// <summary>
/// Finds and loads the OpenClaw config file (JSON5) into the host's configuration, under the
/// <see cref="Section"/> prefix so its keys (it has its own <c>logging</c>, for one) never mix with
/// ASP.NET's. Location: <c>--config &lt;path&gt;</c>, else <c>OPENCLAW_CONFIG_PATH</c>, else
/// <c>~/.openclaw/openclaw.json</c>. A missing file means defaults.
/// </summary>
public static class OpenClawConfigFile
{
    public const string Section = "openclaw";
    public const string PathVariable = "OPENCLAW_CONFIG_PATH";

    /// <summary>The path to read; a path given with <c>--config</c> must exist (the others may be missing).</summary>
    public static string Locate(IConfiguration configuration)
    {
        if (configuration["config"] is { Length: > 0 } explicitPath)
        {
            var full = System.IO.Path.GetFullPath(ExpandHome(explicitPath));
            return File.Exists(full) ? full : throw new InvalidDataException($"--config: no file at {full}");
        }
        var path = configuration[PathVariable] is { Length: > 0 } fromEnv ? fromEnv
            : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".openclaw", "openclaw.json");
        return System.IO.Path.GetFullPath(ExpandHome(path));
    }

    /// <summary>Flattens the file into configuration keys (<c>openclaw:gateway:port</c>, <c>openclaw:agents:list:0:id</c>).</summary>
    public static IReadOnlyDictionary<string, string?> Load(string path)
    {
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        if (!File.Exists(path)) return values;
        var text = File.ReadAllText(path);
        if (string.IsNullOrWhiteSpace(text)) return values;
        string json;
        try
        {
            json = Json5.ToJson(text);
        }
        catch (Json5Exception ex)
        {
            throw new InvalidDataException($"Config file {path}: {ex.Message}", ex);
        }
        using var document = JsonDocument.Parse(json);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"Config file {path}: the top level must be an object.");
        Flatten(document.RootElement, Section, values);
        return values;
    }

    private static void Flatten(JsonElement element, string prefix, Dictionary<string, string?> values)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                    Flatten(property.Value, $"{prefix}{ConfigurationPath.KeyDelimiter}{property.Name}", values);
                break;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                    Flatten(item, $"{prefix}{ConfigurationPath.KeyDelimiter}{index++}", values);
                break;
            case JsonValueKind.String:
                values[prefix] = element.GetString();
                break;
            case JsonValueKind.Null:
                values[prefix] = null;
                break;
            default: // numbers and booleans keep their JSON text ("18789", "true")
                values[prefix] = element.GetRawText();
                break;
        }
    }

    /// <summary>A path with a leading <c>~/</c> made absolute under the user's home folder.</summary>
    public static string ExpandHome(string path) =>
        path.StartsWith("~/", StringComparison.Ordinal)
            ? System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path[2..])
            : path;
}
