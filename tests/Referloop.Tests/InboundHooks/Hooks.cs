using System.Net.Http.Headers;
using System.Text;
using Referloop.Tests.Support;

namespace Referloop.Tests.InboundHooks;

/// <summary>Creating hooks and posting to them as a sender would.</summary>
public static class Hooks
{
    public sealed record Hook(string Id, string Url, string Path, string? Secret);

    public static async Task<Hook> CreateHook(this HttpClient admin, string campaignId, string kind, bool signed = false)
    {
        var created = await admin.PostOk("/api/v1/inbound-hooks", new { campaignId, kind, signed });
        var url = (string)created["url"]!;
        return new Hook((string)created["id"]!, url, new Uri(url).AbsolutePath, (string?)created["signingSecret"]);
    }

    public static Task<HttpResponseMessage> PostJson(this HttpClient client, string path, string json, string? idempotencyKey = null) =>
        client.PostRaw(path, json, "application/json", idempotencyKey);

    public static Task<HttpResponseMessage> PostForm(this HttpClient client, string path, string form, string? idempotencyKey = null) =>
        client.PostRaw(path, form, "application/x-www-form-urlencoded", idempotencyKey);

    public static async Task<HttpResponseMessage> PostRaw(this HttpClient client, string path, string body, string? contentType,
        string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)) };
        if (contentType is not null)
        {
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return await client.SendAsync(request);
    }

    /// <summary>Form encoding of flat key/value pairs, keys such as products[0][name] included.</summary>
    public static string Form(params (string Key, string Value)[] fields) =>
        string.Join('&', fields.Select(f => Uri.EscapeDataString(f.Key) + "=" + Uri.EscapeDataString(f.Value)));
}
