// is_private_address: the address ranges refused by the fetcher's guard (see the header), on
// raw IPv4/IPv6 bytes so that every textual or mapped spelling of an address is judged alike.
#include "fetch/address_guard.hpp"

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

}  // namespace fetchd
