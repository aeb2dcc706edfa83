using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;

namespace Referloop.Http;

/// <summary>
/// Turns a body that is not valid JSON, or JSON of the wrong shape, into 400 problem details naming the field
/// (the JSON path) instead of a bare 400 or a 500.
/// </summary>
internal sealed class BadRequestHandler(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        if (exception is not BadHttpRequestException badRequest)
        {
            return false;
        }

        var (field, message) = badRequest.InnerException switch
        {
            JsonException json => (Field(json.Path), Describe(json)),
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
                    : "The request body could not be read.",
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
