// guest::Cmdline (guest/runtime/cmdline.cc) built for the host: the key=value
// parser every lnic_* guest reads its parameters with.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "guest/runtime/cmdline.h"

// cmdline.cc formats its errors with guest::snprintf (print.cc); serial output is
// dropped (null_serial.cc).
namespace {

guest::Cmdline make(const char* s) {
  return guest::Cmdline(s, std::strlen(s));
}

TEST(GuestCmdline, NumbersAndDefaults) {
  guest::Cmdline c = make("frames=100000 batch=64  seconds=5\tidle_ms=0x10");
  EXPECT_EQ(c.u64("frames", 1), 100000u);
  EXPECT_EQ(c.u64("batch", 1), 64u);
  EXPECT_EQ(c.u64("seconds", 1), 5u);
  EXPECT_EQ(c.u64("idle_ms", 1), 16u);
  EXPECT_EQ(c.u64("absent", 7), 7u);
  EXPECT_TRUE(c.ok()) << c.error();
}

TEST(GuestCmdline, Suffixes) {
  guest::Cmdline c = make("a=10k b=2M c=1g d=0x1k");
  EXPECT_EQ(c.u64("a", 0), 10000u);
  EXPECT_EQ(c.u64("b", 0), 2000000u);
  EXPECT_EQ(c.u64("c", 0), 1000000000u);
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.u64("d", 0), 0u);  // no suffixes on hex: 'k' is not a hex digit
  EXPECT_FALSE(c.ok());
}

TEST(GuestCmdline, MalformedNumbersFallBackAndRecordFirstError) {
  guest::Cmdline c = make("x=12x y= z=99999999999999999999 w=k");
  EXPECT_EQ(c.u64("x", 3), 3u);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(std::string(c.error()), "cmdline: x=\"12x\" is not a number");
  EXPECT_EQ(c.u64("y", 4), 4u);
  EXPECT_EQ(c.u64("z", 5), 5u);  // overflow
  EXPECT_EQ(c.u64("w", 6), 6u);
  EXPECT_EQ(std::string(c.error()), "cmdline: x=\"12x\" is not a number");
}

TEST(GuestCmdline, ParseU64Edges) {
  uint64_t v = 0;
  EXPECT_TRUE(guest::parse_u64("18446744073709551615", 20, &v));
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_FALSE(guest::parse_u64("18446744073709551616", 20, &v));
  EXPECT_TRUE(guest::parse_u64("0xffffffffffffffff", 18, &v));
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_FALSE(guest::parse_u64("0x", 2, &v));
  EXPECT_FALSE(guest::parse_u64("", 0, &v));
  EXPECT_FALSE(guest::parse_u64("20000000000g", 12, &v));  // overflow through the suffix
  EXPECT_TRUE(guest::parse_u64("0", 1, &v));
  EXPECT_EQ(v, 0u);
}

TEST(GuestCmdline, FlagsAndBareKeys) {
  guest::Cmdline c = make("verbose quiet=0 a=yes b=off c=true d=maybe");
  EXPECT_TRUE(c.flag("verbose", false));
  EXPECT_FALSE(c.flag("quiet", true));
  EXPECT_TRUE(c.flag("a", false));
  EXPECT_FALSE(c.flag("b", true));
  EXPECT_TRUE(c.flag("c", false));
  EXPECT_TRUE(c.flag("absent", true));
  EXPECT_TRUE(c.ok());
  EXPECT_FALSE(c.flag("d", false));
  EXPECT_FALSE(c.ok());
}

TEST(GuestCmdline, ChoiceAndLastOccurrenceWins) {
  const char* const modes[] = {"irq", "poll"};
  guest::Cmdline c = make("mode=irq mode=poll");
  EXPECT_EQ(c.choice("mode", modes, 0), 1u);
  guest::Cmdline d = make("mode=fast");
  EXPECT_EQ(d.choice("mode", modes, 0), 0u);
  EXPECT_FALSE(d.ok());
}

TEST(GuestCmdline, KeysMustMatchExactly) {
  guest::Cmdline c = make("framesx=1 frame=2 frames=3");
  EXPECT_EQ(c.u64("frames", 0), 3u);
  EXPECT_EQ(c.u64("frame", 0), 2u);
  EXPECT_FALSE(c.has("fram"));
}

TEST(GuestCmdline, UnknownKeysAreReported) {
  const char* const known[] = {"frames", "mode"};
  guest::Cmdline ok = make(" frames=1   mode=poll ");
  EXPECT_TRUE(ok.check_known(known));
  EXPECT_TRUE(ok.ok());
  guest::Cmdline bad = make("frames=1 fraems=2");
  EXPECT_FALSE(bad.check_known(known));
  EXPECT_EQ(std::string(bad.error()), "cmdline: fraems=\"2\" is not a known parameter");
}

TEST(GuestCmdline, LengthBoundsAndNulEndTheText) {
  const char text[] = "a=1 b=2\0c=3";
  guest::Cmdline c(text, sizeof(text) - 1);
  EXPECT_EQ(c.u64("b", 0), 2u);
  EXPECT_FALSE(c.has("c"));        // after the NUL
  guest::Cmdline d("a=1 b=2", 3);  // length excludes b
  EXPECT_TRUE(d.has("a"));
  EXPECT_FALSE(d.has("b"));
  guest::Cmdline e(nullptr, 10);
  EXPECT_FALSE(e.has("a"));
  guest::Cmdline empty = make("");
  EXPECT_EQ(empty.u64("a", 9), 9u);
}

TEST(GuestCmdline, LongValuesAreTruncatedInErrors) {
  std::string s = "k=" + std::string(200, 'z');
  guest::Cmdline c(s.c_str(), s.size());
  EXPECT_EQ(c.u64("k", 1), 1u);
  EXPECT_FALSE(c.ok());
  EXPECT_LT(std::strlen(c.error()), 160u);
}

}  // namespace
