// is_private_address: the address ranges refused by the fetcher's guard (see the header), on
// raw IPv4/IPv6 bytes so that every textual or mapped spelling of an address is judged alike.
#include "core/address_guard.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace fetchd {

namespace {

struct Range4 {
  std::uint32_t network;
  int prefix;
};

constexpr std::uint32_t ipv4(int a, int b, int c, int d) {
  return (static_cast<std::uint32_t>(a) << 24) | (static_cast<std::uint32_t>(b) << 16) |
         (static_cast<std::uint32_t>(c) << 8) | static_cast<std::uint32_t>(d);
}

constexpr std::array<Range4, 9> kPrivate4{{
    {ipv4(0, 0, 0, 0), 8},       // "this network", unspecified
    {ipv4(10, 0, 0, 0), 8},      // RFC 1918
    {ipv4(100, 64, 0, 0), 10},   // carrier-grade NAT
    {ipv4(127, 0, 0, 0), 8},     // loopback
    {ipv4(169, 254, 0, 0), 16},  // link-local, cloud metadata services
    {ipv4(172, 16, 0, 0), 12},   // RFC 1918
    {ipv4(192, 168, 0, 0), 16},  // RFC 1918
    {ipv4(224, 0, 0, 0), 4},     // multicast
    {ipv4(240, 0, 0, 0), 4},     // reserved, broadcast
}};

bool is_private4(std::uint32_t address) {
  for (const auto& range : kPrivate4) {
    const std::uint32_t mask = ~std::uint32_t{0} << (32 - range.prefix);
    if ((address & mask) == range.network) return true;
  }
  return false;
}

std::uint32_t embedded4(const std::uint8_t* bytes) {
  return ipv4(bytes[12], bytes[13], bytes[14], bytes[15]);
}

bool all_zero(const std::uint8_t* bytes, int count) {
  for (int i = 0; i < count; ++i)
    if (bytes[i] != 0) return false;
  return true;
}

bool is_private6(const std::uint8_t* b) {
  if (all_zero(b, 10) && b[10] == 0xFF && b[11] == 0xFF) return is_private4(embedded4(b));
  if (all_zero(b, 12)) {
    // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
    return all_zero(b, 15) ? true : is_private4(embedded4(b));
  }
  static constexpr std::uint8_t kNat64[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(b, kNat64, sizeof kNat64) == 0) return is_private4(embedded4(b));
  if ((b[0] & 0xFE) == 0xFC) return true;                  // fc00::/7 unique local
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return true;  // fe80::/10 link-local
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0) return true;  // fec0::/10 site-local
  if (b[0] == 0xFF) return true;                           // multicast
  return false;
}

}  // namespace

bool is_private_address(const sockaddr* address, std::size_t length) {
  if (address == nullptr) return true;
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    sockaddr_in in{};
    std::memcpy(&in, address, sizeof in);
    return is_private4(ntohl(in.sin_addr.s_addr));
  }
  if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof in6);
    return is_private6(in6.sin6_addr.s6_addr);
  }
  return true;
}

std::optional<bool> is_private_address(std::string_view ip) {
  const std::string text(ip);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return is_private4(ntohl(v4.s_addr));
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) return is_private6(v6.s6_addr);
  return std::nullopt;
}

bool is_private_literal(std::string_view host) {
  if (auto judged = is_private_address(host)) return *judged;
  // inet_aton takes the classic shorthands (one to four parts, decimal, octal or hex) that
  // getaddrinfo resolves without DNS.
  const std::string text(host);
  in_addr v4{};
  if (!text.empty() && inet_aton(text.c_str(), &v4) != 0) return is_private4(ntohl(v4.s_addr));
  return false;
}

std::string address_text(const sockaddr* address, std::size_t length) {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (address != nullptr && address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    sockaddr_in in{};
    std::memcpy(&in, address, sizeof in);
    if (inet_ntop(AF_INET, &in.sin_addr, buffer, sizeof buffer) != nullptr) return buffer;
  }
  if (address != nullptr && address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof in6);
    if (inet_ntop(AF_INET6, &in6.sin6_addr, buffer, sizeof buffer) != nullptr) return buffer;
  }
  return "?";
}

namespace {

// The 16 bytes of an IPv6 address, or of the IPv4-mapped form of an IPv4 one.
std::optional<std::array<std::uint8_t, 16>> address_bytes(std::string_view ip) {
  const std::string text(ip);
  std::array<std::uint8_t, 16> bytes{};
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    bytes[10] = bytes[11] = 0xFF;
    std::memcpy(&bytes[12], &v4.s_addr, 4);
    return bytes;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    std::memcpy(bytes.data(), v6.s6_addr, 16);
    return bytes;
  }
  return std::nullopt;
}

std::string_view trim_spaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

std::optional<IpRange> IpRange::parse(std::string_view text) {
  text = trim_spaces(text);
  const auto slash = text.find('/');
  const std::string_view ip = text.substr(0, slash);
  auto bytes = address_bytes(ip);
  if (!bytes) return std::nullopt;
  const bool v4 = ip.find(':') == std::string_view::npos;
  const int width = v4 ? 32 : 128;
  int prefix = width;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    prefix = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      prefix = prefix * 10 + (c - '0');
    }
    if (prefix > width) return std::nullopt;
  }
  IpRange range;
  range.prefix_ = prefix + (v4 ? 96 : 0);
  range.network_ = *bytes;
  // Host bits set ("10.1.2.3/8") are a typo more often than not: refuse them.
  for (int bit = range.prefix_; bit < 128; ++bit) {
    if ((range.network_[bit / 8] >> (7 - bit % 8)) & 1) return std::nullopt;
  }
  range.text_ = std::string(text);
  return range;
}

bool IpRange::contains(const std::array<std::uint8_t, 16>& address) const {
  const int whole = prefix_ / 8;
  if (std::memcmp(address.data(), network_.data(), static_cast<std::size_t>(whole)) != 0) {
    return false;
  }
  const int rest = prefix_ % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
  return (address[whole] & mask) == (network_[whole] & mask);
}

bool IpRange::contains(std::string_view ip) const {
  auto bytes = address_bytes(ip);
  return bytes && contains(*bytes);
}

bool IpRange::contains(const sockaddr* address, std::size_t length) const {
  std::array<std::uint8_t, 16> bytes{};
  if (address != nullptr && address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    sockaddr_in in{};
    std::memcpy(&in, address, sizeof in);
    bytes[10] = bytes[11] = 0xFF;
    std::memcpy(&bytes[12], &in.sin_addr.s_addr, 4);
    return contains(bytes);
  }
  if (address != nullptr && address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof in6);
    std::memcpy(bytes.data(), in6.sin6_addr.s6_addr, 16);
    return contains(bytes);
  }
  return false;
}

Result<std::vector<IpRange>> parse_ip_ranges(std::string_view list) {
  std::vector<IpRange> ranges;
  while (!trim_spaces(list).empty()) {
    const auto comma = list.find(',');
    const std::string_view entry = trim_spaces(list.substr(0, comma));
    auto range = IpRange::parse(entry);
    if (!range) {
      // The entry is quoted back, printable only: a configuration error stays on one line
      // (found by the config_loader fuzz target).
      std::string shown;
      for (const char c : entry.substr(0, 64)) {
        const auto u = static_cast<unsigned char>(c);
        shown += (u < 0x20 || u == 0x7F || u >= 0x80) ? '?' : c;
      }
      return fail(
          ErrorCode::kInvalid,
          "\"" + shown + "\" is not an IP address or CIDR range (like 10.0.0.0/8 or fd00::/8)");
    }
    ranges.push_back(std::move(*range));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return ranges;
}

}  // namespace fetchd
