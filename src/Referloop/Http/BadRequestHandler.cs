using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Diagnostics;

namespace Referloop.Http;

/// <summary>
/// Turns a body that is not valid JSON, or JSON of the wrong shape, into 400 problem details naming the field
/// (the JSON path) instead of a bare 400 or a 500.
/// </summary>
internal sealed partial class BadRequestHandler(IProblemDetailsService problems) : IExceptionHandler
{
    /// <summary>The framework's words for a parameter that did not bind: <c>Failed to bind parameter "int? limit" from "abc".</c></summary>
    [GeneratedRegex("""^Failed to bind parameter "(?<type>[^"]+) (?<name>[^" ]+)" from""")]
    private static partial Regex Parameter();

    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        if (exception is not BadHttpRequestException badRequest)
        {
            return false;
        }

        var parameter = badRequest.InnerException is null ? Parameter().Match(badRequest.Message) : null;
        var (field, message) = badRequest.InnerException switch
        {
            JsonException json => (Field(json.Path), Describe(json)),
            // A value of the address (a query string parameter, a route value) that does not read as its type.
            _ when parameter is { Success: true } => (JsonNamingPolicy.CamelCase.ConvertName(parameter.Groups["name"].Value),
                $"cannot be read as {parameter.Groups["type"].Value.Replace("Nullable<", "", StringComparison.Ordinal).TrimEnd('>')}."),
            _ => ("body", badRequest.Message),
        };
        http.Response.StatusCode = badRequest.StatusCode;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            Exception = exception,
            ProblemDetails = new HttpValidationProblemDetails(new Dictionary<string, string[]> { [field] = [message] })
            {
                Status = badRequest.StatusCode,
                Title = badRequest.StatusCode == StatusCodes.Status415UnsupportedMediaType
                    ? "The request body must be JSON (Content-Type: application/json)."
                    : parameter is { Success: true } ? "The request is not valid." : "The request body could not be read.",
                Detail = message,
            },
        });
    }

    private static string Field(string? jsonPath) =>
        string.IsNullOrEmpty(jsonPath) || jsonPath == "$" ? "body" : jsonPath.StartsWith("$.") ? jsonPath[2..] : jsonPath;

    private static string Describe(JsonException json)
    {
        // Our own converters throw messages written for people; the serializer's own ones mention .NET types.
        if (json.Message.StartsWith("must", StringComparison.Ordinal))
        {
            return json.Message;
        }
        return json.Path is null or "$"
            ? "is not valid JSON."
            : "has the wrong type or is not valid JSON here" + (json.LineNumber is { } line ? $" (line {line + 1}, position {json.BytePositionInLine + 1})." : ".");
    }
}
