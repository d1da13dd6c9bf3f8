// JSON5 (https://spec.json5.org) to JSON conversion, hand-written because no JSON5 package is
// served by the NuGet mirror this repository builds against. OpenClaw's openclaw.json is JSON5;
// we convert it to plain JSON text here and parse the result with System.Text.Json.
//
// A single-pass recursive-descent reader over the string that writes straight into a
// Utf8JsonWriter (which takes care of escaping keys and strings for JSON).

using System.Buffers;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;

namespace Gateway.Api.Configuration;

/// <summary>The JSON5 text is malformed, or holds a value JSON cannot represent.</summary>
public sealed class Json5Exception : FormatException
{
    public Json5Exception(string reason, int line, int column)
        : base($"Invalid JSON5 at line {line}, column {column}: {reason}.")
    {
        Reason = reason;
        Line = line;
        Column = column;
    }

    /// <summary>What is wrong, without the position (no trailing period).</summary>
    public string Reason { get; }

    /// <summary>1-based line; lines end at LF, CR or CRLF.</summary>
    public int Line { get; }

    /// <summary>1-based column, counted in UTF-16 code units.</summary>
    public int Column { get; }
}

public static class Json5
{
    /// <summary>Deepest nesting of objects and arrays accepted (System.Text.Json's default too).</summary>
    public const int MaxDepth = 64;

    /// <summary>Converts one JSON5 value to compact JSON text representing the same value.</summary>
    /// <exception cref="Json5Exception">The text is not valid JSON5, is empty (only whitespace and
    /// comments), nests deeper than <see cref="MaxDepth"/>, repeats a property name within one object,
    /// or contains Infinity/NaN or an unpaired surrogate, none of which JSON can represent.</exception>
    public static string ToJson(string json5Text)
    {
        ArgumentNullException.ThrowIfNull(json5Text);
        var buffer = new ArrayBufferWriter<byte>(json5Text.Length + 16);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            new Reader(json5Text, writer).ReadDocument();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static readonly SearchValues<char> HexDigits = SearchValues.Create("0123456789abcdefABCDEF");

    private sealed class Reader(string text, Utf8JsonWriter writer)
    {
        private readonly StringBuilder _scratch = new();
        private int _pos;
        private int _depth;

        private bool AtEnd => _pos >= text.Length;
        private char Current => text[_pos];
        private char PeekAt(int offset) => _pos + offset < text.Length ? text[_pos + offset] : '\0';

        public void ReadDocument()
        {
            SkipTrivia();
            if (AtEnd)
                throw Fail(_pos, "no value found: the input is empty or holds only whitespace and comments");
            ReadValue();
            SkipTrivia();
            if (!AtEnd)
                throw Fail(_pos, $"unexpected {Describe(Current)} after the end of the top-level value");
        }

        private void ReadValue()
        {
            if (AtEnd)
                throw Fail(_pos, "unexpected end of input; expected a value");
            char c = Current;
            switch (c)
            {
                case '{': ReadObject(); break;
                case '[': ReadArray(); break;
                case '"' or '\'': writer.WriteStringValue(ReadString()); break;
                case '+' or '-' or '.' or (>= '0' and <= '9'): ReadNumber(); break;
                default:
                    if (!IsIdentifierStartAt(_pos))
                        throw Fail(_pos, $"unexpected {Describe(c)}; expected a value");
                    ReadLiteral();
                    break;
            }
        }

        private void ReadObject()
        {
            int open = _pos++;
            EnterContainer(open);
            writer.WriteStartObject();
            var names = new HashSet<string>(StringComparer.Ordinal);
            while (true)
            {
                SkipTrivia();
                if (AtEnd) throw Fail(open, "object is never closed (expected '}')");
                if (Current == '}') break;

                int namePos = _pos;
                string name = ReadPropertyName();
                if (!names.Add(name))
                    throw Fail(namePos, $"duplicate property name \"{name}\"");
                writer.WritePropertyName(name);

                SkipTrivia();
                if (AtEnd) throw Fail(open, "object is never closed (expected '}')");
                if (Current != ':')
                    throw Fail(_pos, $"expected ':' after property name but found {Describe(Current)}");
                _pos++;
                SkipTrivia();
                ReadValue();

                SkipTrivia();
                if (AtEnd) throw Fail(open, "object is never closed (expected '}')");
                if (Current == ',') { _pos++; continue; }
                if (Current == '}') break;
                throw Fail(_pos, $"expected ',' or '}}' but found {Describe(Current)}");
            }
            _pos++; // '}'
            writer.WriteEndObject();
            _depth--;
        }

        private void ReadArray()
        {
            int open = _pos++;
            EnterContainer(open);
            writer.WriteStartArray();
            while (true)
            {
                SkipTrivia();
                if (AtEnd) throw Fail(open, "array is never closed (expected ']')");
                if (Current == ']') break;

                ReadValue();

                SkipTrivia();
                if (AtEnd) throw Fail(open, "array is never closed (expected ']')");
                if (Current == ',') { _pos++; continue; }
                if (Current == ']') break;
                throw Fail(_pos, $"expected ',' or ']' but found {Describe(Current)}");
            }
            _pos++; // ']'
            writer.WriteEndArray();
            _depth--;
        }

        private void EnterContainer(int open)
        {
            if (++_depth > MaxDepth)
                throw Fail(open, $"nesting is deeper than the maximum of {MaxDepth} levels");
        }

        private string ReadPropertyName()
        {
            char c = Current;
            if (c is '"' or '\'') return ReadString();
            if (c == '\\' || IsIdentifierStartAt(_pos)) return ReadIdentifierName();
            throw Fail(_pos, $"expected a property name but found {Describe(c)}");
        }

        // IdentifierName, with \uXXXX escapes allowed (the decoded character must itself fit).
        private string ReadIdentifierName()
        {
            _scratch.Clear();
            while (!AtEnd)
            {
                bool first = _scratch.Length == 0;
                if (Current == '\\')
                {
                    int escape = _pos;
                    if (PeekAt(1) != 'u' || !TryReadHex(_pos + 2, 4, out int code))
                        throw Fail(escape, "invalid escape in property name (only \\uXXXX is allowed)");
                    var rune = new Rune(char.IsSurrogate((char)code) ? '\uFFFD' : (char)code);
                    if (!(first ? IsIdentifierStart(rune) : IsIdentifierPart(rune)))
                        throw Fail(escape, $"\\u{code:X4} is not allowed in an unquoted property name");
                    _scratch.Append((char)code);
                    _pos += 6;
                }
                else if (TryGetRuneAt(_pos, out Rune rune)
                         && (first ? IsIdentifierStart(rune) : IsIdentifierPart(rune)))
                {
                    _scratch.Append(text, _pos, rune.Utf16SequenceLength);
                    _pos += rune.Utf16SequenceLength;
                }
                else break;
            }
            return _scratch.ToString();
        }

        private void ReadLiteral()
        {
            int start = _pos;
            string word = ReadWord();
            switch (word)
            {
                case "true": writer.WriteBooleanValue(true); break;
                case "false": writer.WriteBooleanValue(false); break;
                case "null": writer.WriteNullValue(); break;
                case "Infinity" or "NaN":
                    throw Fail(start, $"{word} cannot be represented in JSON");
                default:
                    throw Fail(start, $"unexpected '{word}'; expected a value (strings must be quoted)");
            }
        }

        private string ReadWord()
        {
            int start = _pos;
            while (TryGetRuneAt(_pos, out Rune rune) && IsIdentifierPart(rune))
                _pos += rune.Utf16SequenceLength;
            return text[start.._pos];
        }

        private void ReadNumber()
        {
            int start = _pos;
            bool negative = Current == '-';
            if (Current is '+' or '-') _pos++;

            string json;
            if (!AtEnd && Current is 'I' or 'N')
            {
                string word = ReadWord();
                if (word is "Infinity" or "NaN")
                    throw Fail(start, $"{text[start.._pos]} cannot be represented in JSON");
                throw Fail(start, "invalid number");
            }
            if (!AtEnd && Current == '0' && PeekAt(1) is 'x' or 'X')
            {
                _pos += 2;
                string hex = ReadWhile(char.IsAsciiHexDigit);
                if (hex.Length == 0)
                    throw Fail(start, "expected hexadecimal digits after '0x'");
                var value = BigInteger.Parse("0" + hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
                json = (negative ? "-" : "") + value.ToString(CultureInfo.InvariantCulture);
            }
            else
            {
                string integer = ReadWhile(char.IsAsciiDigit);
                string fraction = "";
                bool hasPoint = !AtEnd && Current == '.';
                if (hasPoint)
                {
                    _pos++;
                    fraction = ReadWhile(char.IsAsciiDigit);
                }
                if (integer.Length == 0 && fraction.Length == 0)
                    throw Fail(start, "invalid number");
                if (integer.Length > 1 && integer[0] == '0')
                    throw Fail(start, "numbers cannot have leading zeros");

                string exponent = "";
                if (!AtEnd && Current is 'e' or 'E')
                {
                    _pos++;
                    string sign = !AtEnd && Current is '+' or '-' ? text[_pos++].ToString() : "";
                    string digits = ReadWhile(char.IsAsciiDigit);
                    if (digits.Length == 0)
                        throw Fail(_pos, "expected digits in the number's exponent");
                    exponent = "e" + sign + digits;
                }
                json = (negative ? "-" : "") + (integer.Length == 0 ? "0" : integer)
                     + (fraction.Length == 0 ? "" : "." + fraction) + exponent;
            }

            // ECMAScript: a number may not run straight into an identifier or a digit ("1a", "0x1g", "1.2.3").
            if (!AtEnd && (Current == '.' || char.IsAsciiDigit(Current) || IsIdentifierStartAt(_pos)))
                throw Fail(_pos, $"unexpected {Describe(Current)} after number");
            writer.WriteRawValue(json);
        }

        private string ReadWhile(Func<char, bool> predicate)
        {
            int start = _pos;
            while (!AtEnd && predicate(Current)) _pos++;
            return text[start.._pos];
        }

        private string ReadString()
        {
            int start = _pos;
            char quote = text[_pos++];
            _scratch.Clear();
            while (true)
            {
                if (AtEnd) throw Fail(start, "unterminated string");
                char c = text[_pos++];
                if (c == quote) break;
                if (c is '\n' or '\r') throw Fail(start, "unterminated string");
                if (c == '\\') ReadEscape(start);
                else _scratch.Append(c);
            }
            for (int i = 0; i < _scratch.Length; i++)
            {
                if (char.IsHighSurrogate(_scratch[i]) && i + 1 < _scratch.Length && char.IsLowSurrogate(_scratch[i + 1])) i++;
                else if (char.IsSurrogate(_scratch[i]))
                    throw Fail(start, "string contains an unpaired surrogate, which JSON cannot represent");
            }
            return _scratch.ToString();
        }

        // Called with _pos just after the backslash.
        private void ReadEscape(int stringStart)
        {
            int escape = _pos - 1;
            if (AtEnd) throw Fail(stringStart, "unterminated string");
            char c = text[_pos++];
            switch (c)
            {
                case 'b': _scratch.Append('\b'); break;
                case 'f': _scratch.Append('\f'); break;
                case 'n': _scratch.Append('\n'); break;
                case 'r': _scratch.Append('\r'); break;
                case 't': _scratch.Append('\t'); break;
                case 'v': _scratch.Append('\v'); break;
                case '0':
                    if (!AtEnd && char.IsAsciiDigit(Current))
                        throw Fail(escape, "invalid escape: \\0 cannot be followed by a digit");
                    _scratch.Append('\0');
                    break;
                case >= '1' and <= '9':
                    throw Fail(escape, $"invalid escape \\{c} (octal escapes are not allowed)");
                case 'x' or 'u':
                    int length = c == 'x' ? 2 : 4;
                    if (!TryReadHex(_pos, length, out int code))
                        throw Fail(escape, $"invalid \\{c} escape: expected {length} hexadecimal digits");
                    _scratch.Append((char)code);
                    _pos += length;
                    break;
                case '\r': // line continuation: backslash followed by a line terminator is dropped
                    if (!AtEnd && Current == '\n') _pos++;
                    break;
                case '\n' or '\u2028' or '\u2029':
                    break;
                default: // \' \" \\ \/ and any other character stand for themselves
                    _scratch.Append(c);
                    break;
            }
        }

        private bool TryReadHex(int at, int length, out int value)
        {
            value = 0;
            if (at + length > text.Length) return false;
            ReadOnlySpan<char> digits = text.AsSpan(at, length);
            return !digits.ContainsAnyExcept(HexDigits)
                && int.TryParse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        }

        private void SkipTrivia()
        {
            while (!AtEnd)
            {
                char c = Current;
                if (IsWhitespace(c) || IsLineTerminator(c))
                {
                    _pos++;
                }
                else if (c == '/' && PeekAt(1) == '/')
                {
                    while (!AtEnd && !IsLineTerminator(Current)) _pos++;
                }
                else if (c == '/' && PeekAt(1) == '*')
                {
                    int end = text.IndexOf("*/", _pos + 2, StringComparison.Ordinal);
                    if (end < 0) throw Fail(_pos, "unterminated comment");
                    _pos = end + 2;
                }
                else return;
            }
        }

        private static bool IsLineTerminator(char c) => c is '\n' or '\r' or '\u2028' or '\u2029';

        // JSON5 WhiteSpace: TAB, VT, FF, SP, NBSP, BOM and any other Unicode "Zs" space.
        private static bool IsWhitespace(char c) =>
            c is '\t' or '\v' or '\f' or ' ' or '\u00A0' or '\uFEFF'
            || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.SpaceSeparator;

        private bool IsIdentifierStartAt(int index) => TryGetRuneAt(index, out Rune rune) && IsIdentifierStart(rune);

        // False at the end of the text and on an unpaired surrogate.
        private bool TryGetRuneAt(int index, out Rune rune)
        {
            rune = default;
            return index < text.Length && Rune.TryGetRuneAt(text, index, out rune);
        }

        private static bool IsIdentifierStart(Rune rune) =>
            rune.Value is '$' or '_'
            || Rune.GetUnicodeCategory(rune) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
                or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter
                or UnicodeCategory.OtherLetter or UnicodeCategory.LetterNumber;

        private static bool IsIdentifierPart(Rune rune) =>
            IsIdentifierStart(rune)
            || rune.Value is 0x200C or 0x200D // ZWNJ, ZWJ
            || Rune.GetUnicodeCategory(rune) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation;

        private static string Describe(char c) =>
            char.IsControl(c) || char.IsWhiteSpace(c) || char.IsSurrogate(c) || c == '\uFEFF'
                ? $"U+{(int)c:X4}"
                : $"'{c}'";

        private Json5Exception Fail(int index, string reason)
        {
            int line = 1, column = 1;
            for (int i = 0; i < index && i < text.Length; i++)
            {
                char c = text[i];
                if (c == '\n' || (c == '\r' && (i + 1 >= text.Length || text[i + 1] != '\n')))
                {
                    line++;
                    column = 1;
                }
                else if (c != '\r')
                {
                    column++;
                }
            }
            return new Json5Exception(reason, line, column);
        }
    }
}
