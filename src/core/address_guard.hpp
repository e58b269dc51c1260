// The fetcher's address guard: which IP addresses count as private (not public unicast), so
// that tasks cannot make fetchd reach loopback, the LAN or cloud metadata services unless
// fetch.allow_private says so. Pure functions; curl_fetcher.cpp applies them to every socket.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

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

// True when `host` (a URL's host, IPv6 without brackets) is an IP literal in a private range,
// including the numeric forms the resolver also accepts (2130706433, 127.1, 0x7f.0.0.1).
bool is_private_literal(std::string_view host);

// "127.0.0.1", "::1" (inet_ntop); "?" for what is not an IP address.
std::string address_text(const sockaddr* address, std::size_t length);

// One entry of fetch.allow_cidrs: "10.20.0.0/16", "fd00::/8", or a single address.
class IpRange {
 public:
  // nullopt unless `text` is an IPv4/IPv6 address with an optional /prefix in range and no
  // host bits set beyond it.
  static std::optional<IpRange> parse(std::string_view text);
  bool contains(const sockaddr* address, std::size_t length) const;
  bool contains(std::string_view ip) const;  // false when `ip` is not an IP literal
  const std::string& text() const { return text_; }

 private:
  bool contains(const std::array<std::uint8_t, 16>& address) const;
  // IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d, prefix + 96), so that both spellings match.
  std::array<std::uint8_t, 16> network_{};
  int prefix_ = 128;
  std::string text_;
};

// A comma-separated list of ranges (spaces allowed, empty list allowed); kInvalid naming the
// first entry that is not one.
Result<std::vector<IpRange>> parse_ip_ranges(std::string_view list);

}  // namespace fetchd
