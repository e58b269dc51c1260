// The fetcher's address guard: which IP addresses count as private (not public unicast), so
// that tasks cannot make fetchd reach loopback, the LAN or cloud metadata services unless
// fetch.allow_private says so. Pure functions; curl_fetcher.cpp applies them to every socket.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

struct sockaddr;

namespace fetchd {

// True for loopback, unspecified, RFC 1918, link-local (169.254/16, fe80::/10), CGNAT
// (100.64/10), multicast, reserved (0/8, 240/4, broadcast), IPv6 unique-local (fc00::/7) and
// site-local (fec0::/10), and any of those IPv4 addresses in IPv4-mapped (::ffff:a.b.c.d),
// IPv4-compatible (::a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) form. Families other than
// AF_INET/AF_INET6 count as private (the fetcher only opens IP sockets).
bool is_private_address(const sockaddr* address, std::size_t length);

// The same for a textual IP address; nullopt when `ip` is not an IPv4/IPv6 literal.
std::optional<bool> is_private_address(std::string_view ip);

// "127.0.0.1", "::1" (inet_ntop); "?" for what is not an IP address.
std::string address_text(const sockaddr* address, std::size_t length);

}  // namespace fetchd
