// The invariant checks of the libFuzzer targets: a violated one aborts with a message,
// which libFuzzer reports with the input that caused it.
#ifndef SPARSEPOOL_TESTS_FUZZ_FUZZ_CHECK_H_
#define SPARSEPOOL_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                          \
  do {                                                                                 \
    if (!(condition)) {                                                                \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

#endif  // SPARSEPOOL_TESTS_FUZZ_FUZZ_CHECK_H_
