using System.Reflection;

namespace Referloop.Http;

/// <summary>
/// The property takes one of the values in <c>All</c> of <paramref name="valuesType"/> (such as
/// <c>RewardRecipient.All</c>): the list validation checks against, published as the schema's <c>enum</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Parameter)]
public sealed class ValuesAttribute(Type valuesType) : Attribute
{
    public IReadOnlyList<string> Values { get; } =
        valuesType.GetField("All", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as string[]
        ?? throw new ArgumentException($"{valuesType.Name} has no public static string[] All.", nameof(valuesType));
}
