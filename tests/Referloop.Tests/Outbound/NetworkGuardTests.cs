using System.Net;
using Referloop.Outbound;

namespace Referloop.Tests.Outbound;

public class NetworkGuardTests
{
    [Theory]
    // IPv4
    [InlineData("0.0.0.0", "unspecified")]
    [InlineData("0.1.2.3", "unspecified")]
    [InlineData("127.0.0.1", "loopback")]
    [InlineData("127.255.255.254", "loopback")]
    [InlineData("10.1.2.3", "private")]
    [InlineData("172.16.0.1", "private")]
    [InlineData("172.31.255.255", "private")]
    [InlineData("192.168.1.10", "private")]
    [InlineData("169.254.169.254", "cloud metadata")]
    [InlineData("169.254.10.1", "link-local")]
    [InlineData("100.64.0.1", "carrier-grade NAT")]
    [InlineData("100.100.100.200", "carrier-grade NAT")]
    [InlineData("192.0.0.192", "IETF protocol assignment")]
    [InlineData("192.0.2.10", "documentation")]
    [InlineData("198.51.100.7", "documentation")]
    [InlineData("203.0.113.10", "documentation")]
    [InlineData("198.18.0.1", "benchmarking")]
    [InlineData("198.19.255.254", "benchmarking")]
    [InlineData("224.0.0.1", "multicast")]
    [InlineData("239.255.255.250", "multicast")]
    [InlineData("240.0.0.1", "reserved")]
    [InlineData("255.255.255.254", "reserved")]
    [InlineData("255.255.255.255", "broadcast")]
    // IPv6
    [InlineData("::1", "loopback")]
    [InlineData("0:0:0:0:0:0:0:1", "loopback")]
    [InlineData("::", "unspecified")]
    [InlineData("fd00:ec2::254", "cloud metadata")]
    [InlineData("fc00::1", "private")]
    [InlineData("fd12:3456::1", "private")]
    [InlineData("fec0::1", "private")]
    [InlineData("fe80::1", "link-local")]
    [InlineData("febf::1", "link-local")]
    [InlineData("ff02::1", "multicast")]
    [InlineData("2001::1", "Teredo")]
    [InlineData("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo")]
    [InlineData("2001:db8::1", "documentation")]
    [InlineData("64:ff9b:1::a00:1", "local-use NAT64")]
    // IPv6 that carries an IPv4 address: the IPv4 address decides
    [InlineData("::ffff:127.0.0.1", "loopback")]
    [InlineData("::ffff:169.254.169.254", "cloud metadata")]
    [InlineData("::ffff:10.0.0.1", "private")]
    [InlineData("::127.0.0.1", "loopback")]
    [InlineData("::10.0.0.1", "private")]
    [InlineData("::ffff:0:127.0.0.1", "loopback")]
    [InlineData("64:ff9b::7f00:1", "loopback")]
    [InlineData("64:ff9b::169.254.169.254", "cloud metadata")]
    [InlineData("64:ff9b::c0a8:10a", "private")]
    [InlineData("2002:7f00:1::", "loopback")]
    [InlineData("2002:a9fe:a9fe::1", "cloud metadata")]
    [InlineData("2002:c0a8:10a:1::1", "private")]
    public void Refuses_non_public_addresses_and_names_the_reason(string address, string reason) =>
        Assert.Equal(reason, NetworkGuard.Forbidden(IPAddress.Parse(address)));

    [Theory]
    [InlineData("8.8.8.8")]
    [InlineData("1.1.1.1")]
    [InlineData("93.184.215.14")]
    [InlineData("172.15.255.255")]
    [InlineData("172.32.0.1")]
    [InlineData("100.63.255.255")]
    [InlineData("100.128.0.1")]
    [InlineData("192.0.3.1")]
    [InlineData("198.17.255.255")]
    [InlineData("198.20.0.1")]
    [InlineData("223.255.255.255")]
    [InlineData("2606:4700::1111")]
    [InlineData("2001:4860:4860::8888")]
    [InlineData("2a00:1450:4001:81c::200e")]
    [InlineData("::ffff:8.8.8.8")]
    [InlineData("64:ff9b::808:808")]
    [InlineData("2002:808:808::1")]
    public void Allows_public_addresses(string address) => Assert.Null(NetworkGuard.Forbidden(IPAddress.Parse(address)));

    // Webhooks:AllowPrivateNetworks opens private networks, not the metadata services that hand out a cloud host's
    // credentials (a full-scope key could read them through a test message's answer).
    [Theory]
    [InlineData("169.254.169.254", "link-local or cloud metadata")]
    [InlineData("169.254.170.2", "link-local or cloud metadata")]
    [InlineData("::ffff:169.254.169.254", "link-local or cloud metadata")]
    [InlineData("100.100.100.200", "cloud metadata")]
    [InlineData("192.0.0.192", "cloud metadata")]
    [InlineData("fd00:ec2::254", "cloud metadata")]
    [InlineData("fe80::1", "link-local")]
    [InlineData("10.1.2.3", null)]
    [InlineData("127.0.0.1", null)]
    [InlineData("192.168.1.10", null)]
    [InlineData("fd12:3456::1", null)]
    public void On_a_private_network_metadata_services_stay_refused(string address, string? reason) =>
        Assert.Equal(reason, NetworkGuard.ForbiddenOnPrivateNetworks(IPAddress.Parse(address)));
}
