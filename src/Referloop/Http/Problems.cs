using Microsoft.AspNetCore.Http.HttpResults;

namespace Referloop.Http;

/// <summary>The few non-validation problems the API answers with, worded once.</summary>
public static class Problems
{
    public static ProblemHttpResult NotFound(string what, string id) =>
        TypedResults.Problem(title: $"No such {what}.", detail: $"There is no {what} with id '{id}'.",
            statusCode: StatusCodes.Status404NotFound);

    public static ProblemHttpResult Conflict(string detail) =>
        TypedResults.Problem(title: "The request conflicts with the current state.", detail: detail,
            statusCode: StatusCodes.Status409Conflict);
}
