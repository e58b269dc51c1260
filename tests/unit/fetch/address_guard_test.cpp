// The address guard's ranges, both sides of each boundary, in every IPv6 spelling of an IPv4
// address that could be used to get around it.
#include "fetch/address_guard.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <string>

namespace fetchd {
namespace {

bool is_private(const std::string& ip) {
  const auto verdict = is_private_address(ip);
  EXPECT_TRUE(verdict.has_value()) << ip << " is not an IP literal";
  return verdict.value_or(false);
}

TEST(AddressGuard, PrivateIpv4Ranges) {
  for (const char* ip : {"127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1",
                         "172.31.255.255", "192.168.0.1", "192.168.255.255", "169.254.169.254",
                         "169.254.0.1", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3",
                         "224.0.0.1", "239.255.255.255", "240.0.0.1", "255.255.255.255"})
    EXPECT_TRUE(is_private(ip)) << ip;
}

TEST(AddressGuard, PublicIpv4JustOutsideTheRanges) {
  for (const char* ip :
       {"1.1.1.1", "8.8.8.8", "9.255.255.255", "11.0.0.0", "126.255.255.255", "128.0.0.0",
        "172.15.255.255", "172.32.0.0", "192.167.255.255", "192.169.0.0", "169.253.255.255",
        "169.255.0.0", "100.63.255.255", "100.128.0.0", "223.255.255.255", "93.184.216.34"})
    EXPECT_FALSE(is_private(ip)) << ip;
}

TEST(AddressGuard, PrivateIpv6Ranges) {
  for (const char* ip : {"::1", "::", "fe80::1", "febf::1", "fc00::1", "fdff:ffff::1", "fec0::1",
                         "ff02::1", "ff0e::1"})
    EXPECT_TRUE(is_private(ip)) << ip;
}

TEST(AddressGuard, PublicIpv6) {
  for (const char* ip : {"2001:4860:4860::8888", "2606:4700::1111", "fe00::1", "fbff::1",
                         "2001:db8::1", "::ffff:8.8.8.8", "64:ff9b::808:808"})
    EXPECT_FALSE(is_private(ip)) << ip;
}

TEST(AddressGuard, Ipv4InIpv6ClothingIsJudgedAsIpv4) {
  EXPECT_TRUE(is_private("::ffff:127.0.0.1"));
  EXPECT_TRUE(is_private("::ffff:7f00:1"));
  EXPECT_TRUE(is_private("::ffff:10.1.2.3"));
  EXPECT_TRUE(is_private("::ffff:169.254.169.254"));
  EXPECT_TRUE(is_private("::127.0.0.1"));      // IPv4-compatible
  EXPECT_TRUE(is_private("64:ff9b::7f00:1"));  // NAT64 of 127.0.0.1
  EXPECT_TRUE(is_private("64:ff9b::192.168.1.1"));
  EXPECT_FALSE(is_private("::8.8.8.8"));
}

TEST(AddressGuard, NotAnAddress) {
  EXPECT_FALSE(is_private_address("localhost").has_value());
  EXPECT_FALSE(is_private_address("127.0.0.1:80").has_value());
  EXPECT_FALSE(is_private_address("").has_value());
}

TEST(AddressGuard, SockaddrForms) {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  inet_pton(AF_INET, "192.168.1.20", &v4.sin_addr);
  EXPECT_TRUE(is_private_address(reinterpret_cast<const sockaddr*>(&v4), sizeof v4));
  EXPECT_EQ(address_text(reinterpret_cast<const sockaddr*>(&v4), sizeof v4), "192.168.1.20");
  inet_pton(AF_INET, "8.8.4.4", &v4.sin_addr);
  EXPECT_FALSE(is_private_address(reinterpret_cast<const sockaddr*>(&v4), sizeof v4));

  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &v6.sin6_addr);
  EXPECT_TRUE(is_private_address(reinterpret_cast<const sockaddr*>(&v6), sizeof v6));
  EXPECT_EQ(address_text(reinterpret_cast<const sockaddr*>(&v6), sizeof v6), "::ffff:127.0.0.1");
  inet_pton(AF_INET6, "2001:4860:4860::8844", &v6.sin6_addr);
  EXPECT_FALSE(is_private_address(reinterpret_cast<const sockaddr*>(&v6), sizeof v6));

  // Other families and truncated structures are refused rather than guessed at.
  sockaddr unix_address{};
  unix_address.sa_family = AF_UNIX;
  EXPECT_TRUE(is_private_address(&unix_address, sizeof unix_address));
  EXPECT_TRUE(is_private_address(reinterpret_cast<const sockaddr*>(&v6), 8));
  EXPECT_TRUE(is_private_address(nullptr, 0));
  EXPECT_EQ(address_text(&unix_address, sizeof unix_address), "?");
}

}  // namespace
}  // namespace fetchd
