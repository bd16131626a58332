// tests/fuzz/fuzz_check.h — invariant checks for the libFuzzer targets.
//
// A fuzz target asserts what must hold after every input, not only "no crash":
//
//   FUZZ_CHECK(pool.audit().empty(), "audit: %s", pool.audit().c_str());
//
// A failed check prints one line naming the invariant and aborts, which libFuzzer
// reports as a crash and saves the input (crash-<sha1>) for a regression corpus entry.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, ...)                                                              \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                   \
      std::fputc('\n', stderr);                                                            \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)
