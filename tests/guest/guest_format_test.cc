// The guest runtime's formatter (guest/runtime/print.cc) built for the host and
// driven through guest::snprintf. Serial output and the CPU index are stubbed
// (null_serial.cc): only the buffer path is exercised here.
#include <gtest/gtest.h>

#include <cstdarg>
#include <cstdint>
#include <string>

#include "guest/runtime/print.h"

namespace {

// Through vsnprintf: the formats here are deliberately odd ("%q"), and a format that is
// not a literal is what -Wformat-security (clang's -Wall) rejects in a snprintf call.
std::string vfmt(const char* f, ...) {
  char buf[128];
  va_list args;
  va_start(args, f);
  guest::vsnprintf(buf, sizeof(buf), f, args);
  va_end(args);
  return buf;
}

template <typename... Args>
std::string fmt(const char* f, Args... args) {
  return vfmt(f, args...);
}

TEST(GuestFormat, Integers) {
  EXPECT_EQ(fmt("%d %d %u", 42, -7, 4000000000u), "42 -7 4000000000");
  EXPECT_EQ(fmt("%x %X %lx", 0xbeefu, 0xbeefu, 0x123456789abcUL), "beef BEEF 123456789abc");
  EXPECT_EQ(fmt("%llu %lld", 18446744073709551615ULL, -9223372036854775807LL - 1),
            "18446744073709551615 -9223372036854775808");
  EXPECT_EQ(fmt("%zu", static_cast<size_t>(12)), "12");
  EXPECT_EQ(fmt("%d", 0), "0");
}

TEST(GuestFormat, WidthAndFlags) {
  EXPECT_EQ(fmt("[%5d][%-5d][%05d][%05d]", 42, 42, 42, -42), "[   42][42   ][00042][-0042]");
  EXPECT_EQ(fmt("%016lx", 0xabcUL), "0000000000000abc");
  EXPECT_EQ(fmt("[%-6s][%6s]", "ab", "ab"), "[ab    ][    ab]");
}

TEST(GuestFormat, StringsCharsPointers) {
  EXPECT_EQ(fmt("%s %c%c %%", "hi", 'o', 'k'), "hi ok %");
  const char* volatile null_string = nullptr;  // volatile: keep -Wformat-overflow quiet
  EXPECT_EQ(fmt("%s", null_string), "(null)");
  EXPECT_EQ(fmt("%p", reinterpret_cast<void*>(0xfee00000)), "0xfee00000");
}

TEST(GuestFormat, UnknownConversionIsPrintedLiterally) {
  EXPECT_EQ(fmt("a %q b"), "a %q b");
}

TEST(GuestFormat, TruncatesAndTerminates) {
  char buf[6];
  EXPECT_EQ(guest::snprintf(buf, sizeof(buf), "%s", "abcdefgh"), 5u);
  EXPECT_STREQ(buf, "abcde");
  char one[1];
  EXPECT_EQ(guest::snprintf(one, sizeof(one), "xyz"), 0u);
  EXPECT_STREQ(one, "");
}

}  // namespace
