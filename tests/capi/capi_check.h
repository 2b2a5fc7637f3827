/* Check macros and small shared helpers of the plain-C API tests: each failed check prints the
 * place, the expression and distri_last_error(), then exits 1 (the tests stop at the first
 * failure). g_checks counts the checks made, for the tests' closing line. */
#ifndef DISTRI_TESTS_CAPI_CHECK_H_
#define DISTRI_TESTS_CAPI_CHECK_H_

#include <distri/distri.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_checks = 0;

#define CHECK(cond)                                                                            \
  do {                                                                                         \
    ++g_checks;                                                                                \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              distri_last_error());                                                            \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

/* The call returns `code` and distri_last_error() contains `needle`. */
#define EXPECT_ERR(call, code, needle)                                                       \
  do {                                                                                       \
    distri_status_t s_ = (call);                                                             \
    ++g_checks;                                                                              \
    if (s_ != (code) || strstr(distri_last_error(), (needle)) == NULL) {                     \
      fprintf(stderr, "%s:%d: %s returned %s (\"%s\"), expected %s with \"%s\"\n", __FILE__, \
              __LINE__, #call, distri_status_name(s_), distri_last_error(),                  \
              distri_status_name(code), (needle));                                           \
      exit(1);                                                                               \
    }                                                                                        \
  } while (0)

#define EXPECT_OK(call) CHECK((call) == DISTRI_OK)

/* A small job (64x48, seed 42) of `steps` steps, the other fields at their defaults. */
static inline void small_job(distri_job_params_t* jp, uint32_t steps) {
  distri_job_params_init(jp);
  jp->prompt = "a lighthouse at dawn";
  jp->width = 64;
  jp->height = 48;
  jp->steps = steps;
  jp->seed = 42;
}

/* A client of the in-library fake cluster ("fake://"). */
static inline distri_client_t* fake_client(void) {
  distri_connect_params_t cp;
  distri_client_t* c = NULL;
  distri_connect_params_init(&cp);
  cp.address = "fake://";
  EXPECT_OK(distri_client_connect(&cp, &c));
  CHECK(c != NULL);
  return c;
}

#endif /* DISTRI_TESTS_CAPI_CHECK_H_ */
