// The address guard's ranges, both sides of each boundary, in every IPv6 spelling of an IPv4
// address that could be used to get around it.
#include "core/address_guard.hpp"

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

TEST(PrivateLiteral, JudgesEverySpellingOfAnAddressButNoName) {
  for (const char* host : {"127.0.0.1", "::1", "10.1.2.3", "2130706433", "127.1", "0x7f.0.0.1",
                           "017700000001", "::ffff:192.168.0.1", "169.254.169.254"}) {
    EXPECT_TRUE(is_private_literal(host)) << host;
  }
  for (const char* host : {"93.184.216.34", "2606:2800:220:1::", "localhost", "example.com", "",
                           "1.2.3.4.5", "0x1g"}) {
    EXPECT_FALSE(is_private_literal(host)) << host;
  }
}

TEST(IpRange, ParsesAddressesAndCidrsAndRefusesTypos) {
  for (const char* good : {"10.0.0.0/8", "127.0.0.1", "0.0.0.0/0", "fd00::/8", "::1", "::/0",
                           " 192.168.1.0/24 ", "2001:db8::/32"}) {
    EXPECT_TRUE(IpRange::parse(good).has_value()) << good;
  }
  for (const char* bad : {"", "10.0.0.0/33", "::/129", "10.0.0.1/8", "10.0.0.0/", "10.0.0.0/a",
                          "example.com", "10.0.0/8", "fd00::1/8", "1.2.3.4/-1", "1.2.3.4/0008"}) {
    EXPECT_FALSE(IpRange::parse(bad).has_value()) << bad;
  }
}

TEST(IpRange, ContainsBothSpellingsOfAnIpv4Address) {
  const auto lan = *IpRange::parse("10.20.0.0/16");
  EXPECT_TRUE(lan.contains("10.20.0.1"));
  EXPECT_TRUE(lan.contains("10.20.255.255"));
  EXPECT_TRUE(lan.contains("::ffff:10.20.3.4"));
  EXPECT_FALSE(lan.contains("10.21.0.1"));
  EXPECT_FALSE(lan.contains("10.19.255.255"));
  EXPECT_FALSE(lan.contains("not an ip"));
  const auto odd = *IpRange::parse("172.16.0.0/12");
  EXPECT_TRUE(odd.contains("172.31.255.255"));
  EXPECT_FALSE(odd.contains("172.32.0.0"));
  const auto v6 = *IpRange::parse("fd00::/8");
  EXPECT_TRUE(v6.contains("fd12:3456::1"));
  EXPECT_FALSE(v6.contains("fe80::1"));
  const auto one = *IpRange::parse("127.0.0.1");
  EXPECT_TRUE(one.contains("127.0.0.1"));
  EXPECT_FALSE(one.contains("127.0.0.2"));

  sockaddr_in in{};
  in.sin_family = AF_INET;
  inet_pton(AF_INET, "10.20.7.7", &in.sin_addr);
  EXPECT_TRUE(lan.contains(reinterpret_cast<const sockaddr*>(&in), sizeof in));
  inet_pton(AF_INET, "10.30.7.7", &in.sin_addr);
  EXPECT_FALSE(lan.contains(reinterpret_cast<const sockaddr*>(&in), sizeof in));
}

TEST(IpRange, ListsAreCommaSeparatedAndNameTheBadEntry) {
  auto ranges = parse_ip_ranges("10.0.0.0/8, fd00::/8,127.0.0.1");
  ASSERT_TRUE(ranges.has_value());
  ASSERT_EQ(ranges->size(), 3u);
  EXPECT_EQ((*ranges)[1].text(), "fd00::/8");
  EXPECT_TRUE(parse_ip_ranges("").value().empty());
  EXPECT_TRUE(parse_ip_ranges("  ").value().empty());
  auto multiline = parse_ip_ranges("4\ne/ a ");  // found by the config_loader fuzz target
  ASSERT_FALSE(multiline.has_value());
  EXPECT_EQ(multiline.error().message.find('\n'), std::string::npos) << multiline.error().message;
  EXPECT_NE(multiline.error().message.find("\"4?e/ a\""), std::string::npos)
      << multiline.error().message;
  auto bad = parse_ip_ranges("10.0.0.0/8, intranet");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("\"intranet\""), std::string::npos);
}

}  // namespace
}  // namespace fetchd
