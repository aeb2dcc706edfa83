using Microsoft.AspNetCore.Mvc.ModelBinding;
using Referloop.Http;

namespace Referloop.Dashboard.Shared;

/// <summary>
/// A posted value that does not read as its property's type (letters or a too large number in a number field, an
/// unknown choice) leaves the property at its starting value and is recorded only in the model state. Forms report
/// such a field under the API's name for it, so they refuse the post as the API would, instead of saving the old value.
/// </summary>
public static class FormBinding
{
    /// <summary>Adds <c>Message</c> under <c>Field</c> for each <c>Property</c> of the form that failed to bind.</summary>
    public static void AddFailures(ModelStateDictionary modelState, ValidationErrors errors,
        params (string Property, string Field, string Message)[] fields)
    {
        foreach (var (property, field, message) in fields)
        {
            if (modelState.TryGetValue(property, out var entry) && entry.Errors.Count > 0)
            {
                errors.Add(field, message);
            }
        }
    }
}
