using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Gateway.Api.Configuration;

/// <summary>
/// Reads typed values out of the OpenClaw section and collects every problem with the key's name as
/// the user wrote it (<c>gateway.port</c>, <c>agents.list[1].id</c>), so a bad config is refused at
/// start with all its faults listed at once.
/// </summary>
public sealed partial class ConfigReader(IConfiguration root)
{
    private readonly List<string> _errors = [];

    public IReadOnlyList<string> Errors => _errors;

    public IConfigurationSection Section(string dottedKey) =>
        root.GetSection(OpenClawConfigFile.Section + ConfigurationPath.KeyDelimiter + dottedKey.Replace('.', ':'));

    public static string DisplayKey(IConfigurationSection section) =>
        DisplayKey(section.Path);

    public static string DisplayKey(string configurationPath)
    {
        var parts = configurationPath.Split(ConfigurationPath.KeyDelimiter);
        var display = new System.Text.StringBuilder();
        foreach (var part in parts.Skip(1))
        {
            if (int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out _)) display.Append('[').Append(part).Append(']');
            else display.Append(display.Length == 0 ? "" : ".").Append(part);
        }
        return display.ToString();
    }

    public void Error(IConfigurationSection section, string problem) => _errors.Add($"{DisplayKey(section)}: {problem}");

    public void Error(string message) => _errors.Add(message);

    public string? String(IConfigurationSection section)
    {
        if (section.Value is { } value) return value;
        if (section.GetChildren().Any()) Error(section, "must be a string, not an object or array");
        return null;
    }

    /// <summary>A string that is either a literal or <c>"${ENV_VAR}"</c> (resolved; a variable that is not set is an error).</summary>
    public string? StringOrVariable(IConfigurationSection section)
    {
        if (String(section) is not { Length: > 0 } value) return null;
        if (VariableReference().Match(value) is not { Success: true } match) return value;
        var name = match.Groups["name"].Value;
        if (root[name] is { Length: > 0 } resolved) return resolved;
        Error(section, $"the environment variable {name} is not set");
        return null;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*)\}$")]
    private static partial System.Text.RegularExpressions.Regex VariableReference();

    public bool? Bool(IConfigurationSection section)
    {
        if (String(section) is not { } text) return null;
        if (bool.TryParse(text, out var value)) return value;
        Error(section, $"must be true or false (got '{text}')");
        return null;
    }

    public double? Number(IConfigurationSection section, double min, double max)
    {
        if (String(section) is not { } text) return null;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            Error(section, $"must be a number (got '{text}')");
            return null;
        }
        if (value < min || value > max)
        {
            Error(section, $"must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)} (got {text})");
            return null;
        }
        return value;
    }

    public int? Integer(IConfigurationSection section, int min, int max) => Integer(DisplayKey(section), String(section), min, max);

    /// <summary>A whole number from any source; <paramref name="key"/> names it in the error (a key, a flag, a variable).</summary>
    public int? Integer(string key, string? text, int min, int max)
    {
        if (text is null) return null;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            Error($"{key}: must be a whole number (got '{text}')");
            return null;
        }
        if (value < min || value > max)
        {
            Error($"{key}: must be between {min} and {max} (got {value})");
            return null;
        }
        return value;
    }

    public string? OneOf(IConfigurationSection section, params string[] allowed)
    {
        if (String(section) is not { } text) return null;
        var match = allowed.FirstOrDefault(option => string.Equals(option, text, StringComparison.OrdinalIgnoreCase));
        if (match is null) Error(section, $"must be one of {string.Join(", ", allowed.Select(a => $"'{a}'"))} (got '{text}')");
        return match;
    }
}
