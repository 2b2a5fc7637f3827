#define _POSIX_C_SOURCE 200809L
/* The C ABI against the "fake://" cluster: every entry point with good and bad arguments
 * (NULL handles, zero and huge sizes, bad UTF-8, cancelled jobs, destroyed clients and jobs).
 * Plain C99; built twice by tests/capi/tests.cmake, once with AddressSanitizer. Exits non-zero
 * on the first failed check. */
#include <distri/distri.h>

#include "capi_check.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void test_versions_and_names(void) {
  char expect[32];
  snprintf(expect, sizeof expect, "%d.%d.%d", DISTRI_VERSION_MAJOR, DISTRI_VERSION_MINOR, DISTRI_VERSION_PATCH);
  CHECK(strcmp(distri_version(), expect) == 0);
  CHECK(distri_version_number() == DISTRI_VERSION_NUMBER);
  CHECK(distri_abi_version() == DISTRI_ABI_VERSION);
  CHECK(strcmp(distri_status_name(DISTRI_OK), "OK") == 0);
  CHECK(strcmp(distri_status_name(DISTRI_ERR_FAILED_PRECONDITION), "FAILED_PRECONDITION") == 0);
  CHECK(strcmp(distri_status_name(-1), "UNKNOWN") == 0);
  CHECK(strcmp(distri_status_name(1000), "UNKNOWN") == 0);
  CHECK(strcmp(distri_job_state_name(DISTRI_JOB_CANCELLED), "CANCELLED") == 0);
  CHECK(strcmp(distri_job_state_name(6), "UNKNOWN") == 0);
  CHECK(distri_last_error() != NULL);
  EXPECT_ERR(distri_log_set_level(99), DISTRI_ERR_INVALID_ARGUMENT, "level");
  EXPECT_ERR(distri_log_set_level(-1), DISTRI_ERR_INVALID_ARGUMENT, "level");
  EXPECT_OK(distri_log_set_level(DISTRI_LOG_WARNING));
  CHECK(strcmp(distri_last_error(), "") == 0); /* success clears the message */
  /* _init tolerates NULL. */
  distri_job_params_init(NULL);
  distri_connect_params_init(NULL);
  distri_local_params_init(NULL);
  distri_job_status_init(NULL);
  distri_image_info_init(NULL);
  distri_cluster_info_init(NULL);
}

/* Copies the text of the PNG's tEXt chunk `key` into out[size]; 0 if there is none. */
static int png_text(const distri_buffer_t* png, const char* key, char* out, size_t size) {
  const uint8_t* d = distri_buffer_data(png);
  size_t n = distri_buffer_size(png), at = 8, klen = strlen(key);
  CHECK(d != NULL && n > 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0);
  while (at + 12 <= n) {
    size_t len = ((size_t)d[at] << 24) | ((size_t)d[at + 1] << 16) | ((size_t)d[at + 2] << 8) | d[at + 3];
    const uint8_t* data = d + at + 8;
    CHECK(len <= n - at - 12);
    if (memcmp(d + at + 4, "tEXt", 4) == 0 && len > klen && memcmp(data, key, klen) == 0 && data[klen] == 0) {
      size_t tlen = len - klen - 1;
      CHECK(tlen < size);
      memcpy(out, data + klen + 1, tlen);
      out[tlen] = 0;
      return 1;
    }
    at += len + 12;
  }
  return 0;
}

static void test_job_params_validation(void) {
  distri_job_params_t jp;
  char* big;
  static const char* bad_utf8[] = {
      "\x80",                 /* lone continuation byte */
      "abc\xC3",              /* truncated 2-byte sequence */
      "\xC0\xAF",             /* overlong '/' */
      "\xED\xA0\x80",         /* UTF-16 surrogate */
      "\xF4\x90\x80\x80",     /* past U+10FFFF */
      "\xFF",                 /* never valid */
  };
  size_t i;

  EXPECT_ERR(distri_job_params_validate(NULL), DISTRI_ERR_INVALID_ARGUMENT, "NULL");
  memset(&jp, 0, sizeof jp);
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "_init");
  small_job(&jp, 4);
  EXPECT_OK(distri_job_params_validate(&jp));
  jp.struct_size = sizeof jp + 8;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "newer distri.h");
  jp.struct_size = 8;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "struct_size");

  small_job(&jp, 4);
  jp.prompt = NULL;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "prompt: required");
  for (i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; ++i) {
    small_job(&jp, 4);
    jp.prompt = bad_utf8[i];
    EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "prompt: not valid UTF-8");
    small_job(&jp, 4);
    jp.negative_prompt = bad_utf8[i];
    EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "negative_prompt: not valid UTF-8");
  }
  small_job(&jp, 4);
  jp.prompt = "un phare \xC3\xA0 l'aube \xE2\x80\x94 \xF0\x9F\x8C\x85"; /* valid multi-byte UTF-8 */
  EXPECT_OK(distri_job_params_validate(&jp));

  big = (char*)malloc((1u << 20) + 2);
  CHECK(big != NULL);
  memset(big, 'a', (1u << 20) + 1);
  big[(1u << 20) + 1] = '\0';
  small_job(&jp, 4);
  jp.prompt = big;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "longer than the limit");
  big[1u << 20] = '\0'; /* exactly 1 MiB: accepted */
  EXPECT_OK(distri_job_params_validate(&jp));
  free(big);

  small_job(&jp, 4); jp.width = 0;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "width: must be 1..16384, got 0");
  small_job(&jp, 4); jp.height = 0;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "height");
  small_job(&jp, 4); jp.width = 16385;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "width");
  small_job(&jp, 4); jp.height = UINT32_MAX;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "height");
  small_job(&jp, 0);
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "steps");
  small_job(&jp, 10001);
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "steps");
  small_job(&jp, 4); jp.guidance = NAN;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "guidance");
  small_job(&jp, 4); jp.guidance = INFINITY;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "guidance");
  small_job(&jp, 4); jp.guidance = -1;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "guidance");
  small_job(&jp, 4); jp.output_format = 7;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "output_format");
  small_job(&jp, 4); jp.output_format = -1;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "output_format");
  small_job(&jp, 4); jp.gpus = 1025;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "gpus");
  {
    char name[300];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    small_job(&jp, 4); jp.sampler = name;
    EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "sampler");
    small_job(&jp, 4); jp.model = name;
    EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "model");
  }
}

/* guidance_rescale (version 2): 0 by default, 0..1 and finite, the message names the field; a
 * job with it runs like any other. */
static void test_guidance_rescale(void) {
  distri_client_t* c;
  distri_job_params_t jp;
  distri_job_t* job = NULL;
  distri_job_status_t st;
  const double bad[] = {1.5, -0.1, NAN, INFINITY};
  size_t i;

  small_job(&jp, 4);
  CHECK(jp.guidance_rescale == 0.0);
  EXPECT_OK(distri_job_params_validate(&jp));
  jp.guidance_rescale = 1.0;
  EXPECT_OK(distri_job_params_validate(&jp));
  for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    small_job(&jp, 4);
    jp.guidance_rescale = bad[i];
    EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT,
               "distri_job_params_t.guidance_rescale: must be a finite number in [0, 1]");
  }
  small_job(&jp, 4);
  jp.guidance_rescale = 1.5;
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT, "got 1.5");

  c = fake_client();
  EXPECT_ERR(distri_job_submit(c, &jp, &job), DISTRI_ERR_INVALID_ARGUMENT, "guidance_rescale");
  CHECK(job == NULL);
  small_job(&jp, 4);
  jp.guidance_rescale = 0.5;
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  distri_job_status_init(&st);
  EXPECT_OK(distri_job_wait(job, -1, &st));
  CHECK(st.state == DISTRI_JOB_SUCCEEDED && st.step == 4);
  distri_job_destroy(job);
  distri_client_destroy(c);
}

static void test_connect_arguments(void) {
  distri_connect_params_t cp;
  distri_local_params_t lp;
  distri_client_t* c = (distri_client_t*)&cp; /* must be reset to NULL on error */
  const char* z85 = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

  EXPECT_ERR(distri_client_connect(NULL, &c), DISTRI_ERR_INVALID_ARGUMENT, "NULL");
  CHECK(c == NULL);
  distri_connect_params_init(&cp);
  EXPECT_ERR(distri_client_connect(&cp, NULL), DISTRI_ERR_INVALID_ARGUMENT, "out_client");
  EXPECT_ERR(distri_client_connect(&cp, &c), DISTRI_ERR_INVALID_ARGUMENT, "address: required");
  cp.address = "http://example.org";
  EXPECT_ERR(distri_client_connect(&cp, &c), DISTRI_ERR_INVALID_ARGUMENT, "tcp://");
  cp.address = "tcp://\xFF";
  EXPECT_ERR(distri_client_connect(&cp, &c), DISTRI_ERR_INVALID_ARGUMENT, "UTF-8");
  cp.address = "tcp://127.0.0.1:1";
  EXPECT_ERR(distri_client_connect(&cp, &c), DISTRI_ERR_INVALID_ARGUMENT, "server_public_key: required");
  cp.server_public_key = "short";
  cp.client_public_key = z85;
  cp.client_secret_key = z85;
  EXPECT_ERR(distri_client_connect(&cp, &c), DISTRI_ERR_INVALID_ARGUMENT, "server_public_key");
  cp.server_public_key = z85;
  cp.request_timeout_ms = 0;
  EXPECT_ERR(distri_client_connect(&cp, &c), DISTRI_ERR_INVALID_ARGUMENT, "request_timeout_ms");
  distri_connect_params_init(&cp);
  cp.address = "tcp://127.0.0.1:1";
  cp.key_dir = "/nonexistent/distri-keys";
  CHECK(distri_client_connect(&cp, &c) != DISTRI_OK);
  CHECK(strstr(distri_last_error(), "/nonexistent/distri-keys") != NULL);
  CHECK(c == NULL);
  cp.struct_size = 0;
  EXPECT_ERR(distri_client_connect(&cp, &c), DISTRI_ERR_INVALID_ARGUMENT, "_init");

  EXPECT_ERR(distri_client_create_local(NULL, &c), DISTRI_ERR_INVALID_ARGUMENT, "NULL");
  distri_local_params_init(&lp);
  EXPECT_ERR(distri_client_create_local(&lp, NULL), DISTRI_ERR_INVALID_ARGUMENT, "out_client");
  EXPECT_ERR(distri_client_create_local(&lp, &c), DISTRI_ERR_INVALID_ARGUMENT, "model_path: required");
  lp.model_path = "";
  EXPECT_ERR(distri_client_create_local(&lp, &c), DISTRI_ERR_INVALID_ARGUMENT, "model_path");
  lp.model_path = "/nonexistent/model";
  lp.gpus = -2;
  EXPECT_ERR(distri_client_create_local(&lp, &c), DISTRI_ERR_INVALID_ARGUMENT, "gpus");
  lp.gpus = 0;
  lp.cpu_actors = 0;
  EXPECT_ERR(distri_client_create_local(&lp, &c), DISTRI_ERR_INVALID_ARGUMENT, "no actor");
  lp.cpu_actors = 100000;
  EXPECT_ERR(distri_client_create_local(&lp, &c), DISTRI_ERR_INVALID_ARGUMENT, "cpu_actors");
  lp.cpu_actors = 1;
  lp.dtype = "fp64";
  EXPECT_ERR(distri_client_create_local(&lp, &c), DISTRI_ERR_INVALID_ARGUMENT, "dtype");
  lp.dtype = NULL;
  lp.startup_timeout_ms = 0;
  EXPECT_ERR(distri_client_create_local(&lp, &c), DISTRI_ERR_INVALID_ARGUMENT, "startup_timeout_ms");
  lp.startup_timeout_ms = 1000;
  /* A missing model folder fails before anything starts (or the build has no embedded cluster). */
  CHECK(distri_client_create_local(&lp, &c) != DISTRI_OK);
  CHECK(c == NULL);
}

static int g_progress_calls = 0;
static uint32_t g_last_step = 0;
static int record_progress(void* user_data, uint32_t step, uint32_t total) {
  CHECK(user_data == (void*)&g_progress_calls);
  CHECK(step <= total);
  CHECK(g_progress_calls == 0 || step >= g_last_step);
  g_last_step = step;
  ++g_progress_calls;
  return 0;
}
static int cancel_at_step_3(void* user_data, uint32_t step, uint32_t total) {
  (void)user_data;
  (void)total;
  return step >= 3;
}

static void test_jobs(void) {
  distri_client_t* c = fake_client();
  distri_job_params_t jp;
  distri_job_t* job = NULL;
  distri_job_status_t st;
  distri_buffer_t* buf = NULL;
  distri_image_info_t info;
  distri_cluster_info_t ci;
  const uint8_t* data;

  distri_cluster_info_init(&ci);
  EXPECT_OK(distri_client_get_cluster_info(c, &ci));
  CHECK(ci.actors == 1 && ci.nodes == 1);
  EXPECT_ERR(distri_client_get_cluster_info(c, NULL), DISTRI_ERR_INVALID_ARGUMENT, "out_info");
  EXPECT_ERR(distri_client_get_cluster_info(NULL, &ci), DISTRI_ERR_INVALID_ARGUMENT, "client is NULL");

  /* Submit, wait with progress, fetch PNG. */
  small_job(&jp, 10);
  jp.progress = record_progress;
  jp.progress_user_data = &g_progress_calls;
  EXPECT_ERR(distri_job_submit(NULL, &jp, &job), DISTRI_ERR_INVALID_ARGUMENT, "client is NULL");
  EXPECT_ERR(distri_job_submit(c, &jp, NULL), DISTRI_ERR_INVALID_ARGUMENT, "out_job");
  EXPECT_ERR(distri_job_submit(c, NULL, &job), DISTRI_ERR_INVALID_ARGUMENT, "NULL");
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  CHECK(distri_job_id(job) != NULL && strlen(distri_job_id(job)) == 32);
  distri_job_status_init(&st);
  EXPECT_OK(distri_job_get_status(job, &st));
  CHECK(st.total_steps == 10 && st.seed == 42);
  EXPECT_ERR(distri_job_get_status(job, NULL), DISTRI_ERR_INVALID_ARGUMENT, "out_status");
  EXPECT_OK(distri_job_wait(job, -1, &st));
  CHECK(st.state == DISTRI_JOB_SUCCEEDED && st.step == 10 && strcmp(st.error, "") == 0);
  CHECK(g_progress_calls >= 1 && g_last_step == 10);
  EXPECT_ERR(distri_job_get_result(job, NULL, NULL), DISTRI_ERR_INVALID_ARGUMENT, "out_image");
  distri_image_info_init(&info);
  EXPECT_OK(distri_job_get_result(job, &buf, &info));
  data = distri_buffer_data(buf);
  CHECK(data != NULL && distri_buffer_size(buf) > 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0);
  CHECK(info.format == DISTRI_OUTPUT_PNG && info.width == 64 && info.height == 48 && info.stride == 0);
  CHECK(info.seed == 42);
  {
    char submitted[64];
    CHECK(png_text(buf, "fake:submitted", submitted, sizeof submitted) && strcmp(submitted, "alone") == 0);
  }
  distri_buffer_destroy(buf);
  distri_buffer_destroy(buf); /* a destroyed buffer is ignored */
  CHECK(distri_buffer_data(buf) == NULL && distri_buffer_size(buf) == 0);
  distri_buffer_destroy(NULL);
  CHECK(distri_buffer_data(NULL) == NULL && distri_buffer_size(NULL) == 0);
  /* Job handles by id. */
  {
    distri_job_t* again = NULL;
    EXPECT_OK(distri_job_open(c, distri_job_id(job), &again));
    EXPECT_OK(distri_job_get_status(again, &st));
    CHECK(st.state == DISTRI_JOB_SUCCEEDED);
    distri_job_destroy(again);
    EXPECT_ERR(distri_job_open(c, "not-hex", &again), DISTRI_ERR_INVALID_ARGUMENT, "job id");
    CHECK(again == NULL);
    EXPECT_ERR(distri_job_open(c, "0123456789abcdef0123456789abcdef", &again), DISTRI_ERR_NOT_FOUND, "not known");
    EXPECT_ERR(distri_job_open(c, NULL, &again), DISTRI_ERR_INVALID_ARGUMENT, "job_id");
    EXPECT_ERR(distri_job_open(c, "\xFF", &again), DISTRI_ERR_INVALID_ARGUMENT, "UTF-8");
  }
  distri_job_destroy(job);
  /* Destroyed job handle: errors, never a crash (the handle table is checked first). */
  EXPECT_ERR(distri_job_get_status(job, &st), DISTRI_ERR_INVALID_ARGUMENT, "not a live distri_job_t");
  EXPECT_ERR(distri_job_wait(job, 0, NULL), DISTRI_ERR_INVALID_ARGUMENT, "not a live");
  EXPECT_ERR(distri_job_cancel(job), DISTRI_ERR_INVALID_ARGUMENT, "not a live");
  EXPECT_ERR(distri_job_get_result(job, &buf, NULL), DISTRI_ERR_INVALID_ARGUMENT, "not a live");
  CHECK(distri_job_id(job) == NULL);
  distri_job_destroy(job);
  distri_job_destroy(NULL);
  EXPECT_ERR(distri_job_cancel(NULL), DISTRI_ERR_INVALID_ARGUMENT, "job is NULL");

  /* RGB8 output. */
  small_job(&jp, 2);
  jp.output_format = DISTRI_OUTPUT_RGB8;
  EXPECT_OK(distri_client_generate(c, &jp, 10000, &buf, &info));
  CHECK(info.format == DISTRI_OUTPUT_RGB8 && info.stride == 64 * 3);
  CHECK(distri_buffer_size(buf) == (size_t)info.stride * info.height);
  distri_buffer_destroy(buf);
  EXPECT_OK(distri_client_generate(c, &jp, -1, &buf, NULL)); /* info is optional */
  distri_buffer_destroy(buf);
  /* Fake-cluster rejection is reported as the head's error. */
  small_job(&jp, 2);
  jp.width = 63;
  EXPECT_ERR(distri_job_submit(c, &jp, &job), DISTRI_ERR_INVALID_ARGUMENT, "multiples of 8");
  CHECK(job == NULL);

  /* Unfinished, timed out, cancelled. */
  small_job(&jp, 10000);
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  EXPECT_ERR(distri_job_get_result(job, &buf, NULL), DISTRI_ERR_FAILED_PRECONDITION, "wait for it first");
  CHECK(buf == NULL);
  EXPECT_ERR(distri_job_wait(job, 0, &st), DISTRI_ERR_DEADLINE_EXCEEDED, "after 0 ms");
  distri_job_status_init(&st);
  EXPECT_ERR(distri_job_wait(job, 20, &st), DISTRI_ERR_DEADLINE_EXCEEDED, "after 20 ms");
  CHECK(st.state == DISTRI_JOB_RUNNING && st.total_steps == 10000); /* the last state seen */
  EXPECT_OK(distri_job_cancel(job));
  EXPECT_OK(distri_job_wait(job, 1000, &st));
  CHECK(st.state == DISTRI_JOB_CANCELLED);
  EXPECT_ERR(distri_job_get_result(job, &buf, NULL), DISTRI_ERR_CANCELLED, "cancelled");
  EXPECT_OK(distri_job_cancel(job)); /* cancelling twice is fine */
  distri_job_destroy(job);

  /* The progress callback cancels. */
  small_job(&jp, 10000);
  jp.progress = cancel_at_step_3;
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  EXPECT_OK(distri_job_wait(job, 10000, &st));
  CHECK(st.state == DISTRI_JOB_CANCELLED && st.step >= 3);
  distri_job_destroy(job);
  EXPECT_ERR(distri_client_generate(c, &jp, 10000, &buf, NULL), DISTRI_ERR_CANCELLED, "cancelled");
  CHECK(buf == NULL);
  small_job(&jp, 10000);
  EXPECT_ERR(distri_client_generate(c, &jp, 10, &buf, NULL), DISTRI_ERR_DEADLINE_EXCEEDED, "after 10 ms");

  /* A job that fails on the cluster. */
  small_job(&jp, 2);
  jp.prompt = "fake:fail";
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  EXPECT_OK(distri_job_wait(job, 10000, &st));
  CHECK(st.state == DISTRI_JOB_FAILED && strstr(st.error, "fake failure") != NULL);
  EXPECT_ERR(distri_job_get_result(job, &buf, NULL), DISTRI_ERR_ABORTED, "fake failure");
  distri_job_destroy(job);
  EXPECT_ERR(distri_client_generate(c, &jp, 10000, &buf, NULL), DISTRI_ERR_ABORTED, "fake failure");

  /* Random seeds are drawn by the cluster and reported. */
  small_job(&jp, 1);
  jp.random_seed = 1;
  EXPECT_OK(distri_client_generate(c, &jp, 10000, &buf, &info));
  distri_buffer_destroy(buf);

  /* Output structs with a bad struct_size. */
  small_job(&jp, 1);
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  memset(&st, 0, sizeof st);
  EXPECT_ERR(distri_job_get_status(job, &st), DISTRI_ERR_INVALID_ARGUMENT, "distri_job_status_t.struct_size");
  memset(&info, 0, sizeof info);
  EXPECT_ERR(distri_job_get_result(job, &buf, &info), DISTRI_ERR_INVALID_ARGUMENT, "distri_image_info_t");
  memset(&ci, 0, sizeof ci);
  EXPECT_ERR(distri_client_get_cluster_info(c, &ci), DISTRI_ERR_INVALID_ARGUMENT, "distri_cluster_info_t");
  distri_job_destroy(job);
  distri_client_destroy(c);
}

/* How the fake cluster says the job reached it ("alone", "batch of N"). */
static void expect_submitted_as(distri_job_t* job, const char* want) {
  distri_buffer_t* buf = NULL;
  char got[64];
  EXPECT_OK(distri_job_get_result(job, &buf, NULL));
  CHECK(png_text(buf, "fake:submitted", got, sizeof got));
  if (strcmp(got, want) != 0) fprintf(stderr, "fake:submitted is \"%s\", expected \"%s\"\n", got, want);
  CHECK(strcmp(got, want) == 0);
  distri_buffer_destroy(buf);
}

static void test_batch(void) {
  distri_client_t* c = fake_client();
  distri_job_params_t p[3];
  const distri_job_params_t* pp[3] = {&p[0], &p[1], &p[2]};
  distri_job_t* jobs[3];
  distri_job_status_t st;
  int i;
  for (i = 0; i < 3; ++i) {
    small_job(&p[i], 3);
    p[i].seed = (uint64_t)i;
  }
  EXPECT_OK(distri_job_submit_batch(c, pp, 3, jobs));
  distri_job_status_init(&st);
  for (i = 0; i < 3; ++i) {
    CHECK(jobs[i] != NULL);
    EXPECT_OK(distri_job_wait(jobs[i], 10000, &st));
    CHECK(st.state == DISTRI_JOB_SUCCEEDED && st.seed == (uint64_t)i);
    /* The cluster got the three in one call, not one job at a time. */
    expect_submitted_as(jobs[i], "batch of 3");
    distri_job_destroy(jobs[i]);
  }
  /* A batch of one is a batch too. */
  EXPECT_OK(distri_job_submit_batch(c, pp, 1, jobs));
  EXPECT_OK(distri_job_wait(jobs[0], 10000, &st));
  expect_submitted_as(jobs[0], "batch of 1");
  distri_job_destroy(jobs[0]);
  p[1].width = 0;
  jobs[0] = (distri_job_t*)&st;
  EXPECT_ERR(distri_job_submit_batch(c, pp, 3, jobs), DISTRI_ERR_INVALID_ARGUMENT, "params[1]: distri_job_params_t.width");
  CHECK(jobs[0] == NULL && jobs[1] == NULL && jobs[2] == NULL);
  /* Passes validation, refused by the cluster: the whole batch is refused, nothing was
   * accepted, so nothing needed cancelling. */
  p[1].width = 63;
  jobs[0] = (distri_job_t*)&st;
  EXPECT_ERR(distri_job_submit_batch(c, pp, 3, jobs), DISTRI_ERR_INVALID_ARGUMENT, "params[1]: jobs[1] of 3: width and height must be multiples of 8, got 63x48 (no job of the batch was accepted)");
  CHECK(strstr(distri_last_error(), "cancelled") == NULL);
  CHECK(jobs[0] == NULL && jobs[1] == NULL && jobs[2] == NULL);
  p[2].width = 65; /* the first refused spec is named */
  EXPECT_ERR(distri_job_submit_batch(c, pp, 3, jobs), DISTRI_ERR_INVALID_ARGUMENT, "params[1]: jobs[1] of 3");
  p[2].width = 64;
  EXPECT_ERR(distri_job_submit_batch(c, pp, 0, jobs), DISTRI_ERR_INVALID_ARGUMENT, "count");
  EXPECT_ERR(distri_job_submit_batch(c, pp, (size_t)1 << 40, jobs), DISTRI_ERR_INVALID_ARGUMENT, "count");
  EXPECT_ERR(distri_job_submit_batch(c, NULL, 3, jobs), DISTRI_ERR_INVALID_ARGUMENT, "params is NULL");
  EXPECT_ERR(distri_job_submit_batch(c, pp, 3, NULL), DISTRI_ERR_INVALID_ARGUMENT, "out_jobs");
  pp[2] = NULL;
  p[1].width = 64;
  EXPECT_ERR(distri_job_submit_batch(c, pp, 3, jobs), DISTRI_ERR_INVALID_ARGUMENT, "params[2]");
  distri_client_destroy(c);
}

static void test_destroyed_client(void) {
  distri_client_t* c = fake_client();
  distri_job_params_t jp;
  distri_job_t* job = NULL;
  distri_job_status_t st;
  distri_buffer_t* buf = NULL;
  distri_cluster_info_t ci;
  small_job(&jp, 10000);
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  distri_client_destroy(c);
  /* The job outlives its client: its calls fail cleanly. */
  distri_job_status_init(&st);
  EXPECT_ERR(distri_job_get_status(job, &st), DISTRI_ERR_FAILED_PRECONDITION, "client was destroyed");
  EXPECT_ERR(distri_job_wait(job, -1, &st), DISTRI_ERR_FAILED_PRECONDITION, "client was destroyed");
  EXPECT_ERR(distri_job_cancel(job), DISTRI_ERR_FAILED_PRECONDITION, "client was destroyed");
  EXPECT_ERR(distri_job_get_result(job, &buf, NULL), DISTRI_ERR_FAILED_PRECONDITION, "client was destroyed");
  CHECK(strlen(distri_job_id(job)) == 32);
  distri_job_destroy(job);
  /* The destroyed client handle itself. */
  EXPECT_ERR(distri_job_submit(c, &jp, &job), DISTRI_ERR_INVALID_ARGUMENT, "not a live distri_client_t");
  distri_cluster_info_init(&ci);
  EXPECT_ERR(distri_client_get_cluster_info(c, &ci), DISTRI_ERR_INVALID_ARGUMENT, "not a live");
  EXPECT_ERR(distri_client_generate(c, &jp, 0, &buf, NULL), DISTRI_ERR_INVALID_ARGUMENT, "not a live");
  distri_client_destroy(c); /* ignored */
  distri_client_destroy(NULL);
}

/* Threads: each thread has its own last error; one client serves concurrent submitters. */
struct thread_arg {
  distri_client_t* client;
  int ok;
};
static void* submitter(void* p) {
  struct thread_arg* a = (struct thread_arg*)p;
  distri_job_params_t jp;
  distri_buffer_t* buf = NULL;
  int i;
  a->ok = 1;
  if (distri_job_params_validate(NULL) != DISTRI_ERR_INVALID_ARGUMENT) a->ok = 0;
  for (i = 0; i < 5; ++i) {
    small_job(&jp, 2);
    jp.seed = (uint64_t)i;
    if (distri_client_generate(a->client, &jp, 10000, &buf, NULL) != DISTRI_OK) a->ok = 0;
    distri_buffer_destroy(buf);
  }
  if (strcmp(distri_last_error(), "") != 0) a->ok = 0;
  return NULL;
}
static void test_threads(void) {
  distri_client_t* c = fake_client();
  pthread_t t[4];
  struct thread_arg args[4];
  int i;
  EXPECT_ERR(distri_job_params_validate(NULL), DISTRI_ERR_INVALID_ARGUMENT, "NULL");
  for (i = 0; i < 4; ++i) {
    args[i].client = c;
    CHECK(pthread_create(&t[i], NULL, submitter, &args[i]) == 0);
  }
  for (i = 0; i < 4; ++i) {
    CHECK(pthread_join(t[i], NULL) == 0);
    CHECK(args[i].ok);
  }
  /* This thread's message is untouched by the others' successes. */
  CHECK(strstr(distri_last_error(), "NULL") != NULL);
  distri_client_destroy(c);
}

/* Cancel from another thread wakes a blocked wait. */
static void* canceller(void* p) {
  distri_job_t* job = (distri_job_t*)p;
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL);
  if (distri_job_cancel(job) != DISTRI_OK) fprintf(stderr, "cancel failed: %s\n", distri_last_error());
  return NULL;
}
static void test_cancel_from_thread(void) {
  distri_client_t* c = fake_client();
  distri_job_params_t jp;
  distri_job_t* job = NULL;
  distri_job_status_t st;
  pthread_t t;
  small_job(&jp, 10000);
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  CHECK(pthread_create(&t, NULL, canceller, job) == 0);
  distri_job_status_init(&st);
  EXPECT_OK(distri_job_wait(job, 15000, &st));
  CHECK(st.state == DISTRI_JOB_CANCELLED);
  CHECK(pthread_join(t, NULL) == 0);
  distri_job_destroy(job);
  distri_client_destroy(c);
}

int main(void) {
  test_versions_and_names();
  test_job_params_validation();
  test_guidance_rescale();
  test_connect_arguments();
  test_jobs();
  test_batch();
  test_destroyed_client();
  test_threads();
  test_cancel_from_thread();
  printf("capi_api_test: %d checks passed\n", g_checks);
  return 0;
}
