namespace Referloop.Http;

/// <summary>
/// Runs <see cref="IValidatable.Validate"/> on every validatable argument and answers 400 problem details
/// naming each bad field, so handlers only ever see valid input.
/// </summary>
public sealed class ValidationFilter : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        ValidationErrors? errors = null;
        foreach (var argument in context.Arguments)
        {
            if (argument is IValidatable validatable)
            {
                errors ??= new ValidationErrors();
                validatable.Validate(errors);
            }
        }

        if (errors is { IsEmpty: false })
        {
            return TypedResults.ValidationProblem(errors.ToDictionary(),
                title: "The request is not valid.", detail: "See 'errors' for each field and the rule it broke.");
        }

        return await next(context);
    }
}

public static class ValidationFilterExtensions
{
    public static TBuilder WithValidation<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter<TBuilder, ValidationFilter>();
}
