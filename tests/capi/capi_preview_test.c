#define _POSIX_C_SOURCE 200809L
/* Latent previews through the C ABI against the "fake://" cluster: distri_job_get_preview
 * with good and bad arguments, previews kept by distri_job_wait, and distri_job_params_t of
 * version 1 (the size before preview_every). Plain C99; built twice by tests/capi/tests.cmake,
 * once with AddressSanitizer. The embedded cluster's previews: capi_e2e_test.c. */
#include <distri/distri.h>

#include "capi_check.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* distri_job_params_t as distri.h version 1 laid it out: everything before preview_every. */
#define JOB_PARAMS_V1_SIZE offsetof(distri_job_params_t, preview_every)


static void preview_job(distri_job_params_t* jp, uint32_t steps, uint32_t preview_every) {
  small_job(jp, steps);
  jp->preview_every = preview_every;
}

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

static uint32_t be32(const uint8_t* p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* A valid preview: a PNG whose IHDR says image / 8, and info agrees. */
static void check_preview(distri_buffer_t* buf, const distri_image_info_t* info, uint32_t w, uint32_t h) {
  const uint8_t* d = distri_buffer_data(buf);
  CHECK(d != NULL && distri_buffer_size(buf) > 24);
  CHECK(memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(d + 12, "IHDR", 4) == 0);
  CHECK(be32(d + 16) == w && be32(d + 20) == h);
  CHECK(info->format == DISTRI_OUTPUT_PNG && info->width == w && info->height == h && info->stride == 0);
}

/* Polls until the job has a preview (or fails the test after ~10 s). */
static distri_buffer_t* poll_preview(distri_job_t* job, distri_image_info_t* info, uint32_t* step) {
  distri_buffer_t* buf = NULL;
  int i;
  for (i = 0; i < 1000; ++i) {
    distri_status_t s = distri_job_get_preview(job, &buf, info, step);
    if (s == DISTRI_OK) return buf;
    CHECK(s == DISTRI_ERR_NOT_FOUND && strstr(distri_last_error(), "no preview yet") != NULL);
    CHECK(buf == NULL && *step == 0);
    sleep_ms(10);
  }
  CHECK(!"no preview within 10 s");
  return NULL;
}

static void test_bad_arguments(void) {
  distri_client_t* c = fake_client();
  distri_job_params_t jp;
  distri_job_t* job = NULL;
  distri_buffer_t* buf = (distri_buffer_t*)&jp; /* must be reset to NULL on error */
  distri_image_info_t info;
  uint32_t step = 77;

  preview_job(&jp, 10000, 2);
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  distri_image_info_init(&info);
  EXPECT_ERR(distri_job_get_preview(NULL, &buf, &info, &step), DISTRI_ERR_INVALID_ARGUMENT, "job is NULL");
  CHECK(buf == NULL && step == 0);
  EXPECT_ERR(distri_job_get_preview(job, NULL, &info, &step), DISTRI_ERR_INVALID_ARGUMENT, "out_image is NULL");
  EXPECT_ERR(distri_job_get_preview(job, &buf, &info, NULL), DISTRI_ERR_INVALID_ARGUMENT, "out_step is NULL");
  memset(&info, 0, sizeof info);
  EXPECT_ERR(distri_job_get_preview(job, &buf, &info, &step), DISTRI_ERR_INVALID_ARGUMENT,
             "distri_image_info_t.struct_size");
  EXPECT_OK(distri_job_cancel(job));
  distri_job_destroy(job);
  EXPECT_ERR(distri_job_get_preview(job, &buf, NULL, &step), DISTRI_ERR_INVALID_ARGUMENT, "not a live distri_job_t");
  CHECK(buf == NULL);

  /* preview_every is checked like every other field. */
  preview_job(&jp, 4, 10001);
  EXPECT_ERR(distri_job_params_validate(&jp), DISTRI_ERR_INVALID_ARGUMENT,
             "preview_every: must be 0..10000, got 10001");
  EXPECT_ERR(distri_job_submit(c, &jp, &job), DISTRI_ERR_INVALID_ARGUMENT, "preview_every");
  CHECK(job == NULL);

  /* After the client is destroyed: FAILED_PRECONDITION, as every job call. */
  preview_job(&jp, 10000, 2);
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  distri_client_destroy(c);
  EXPECT_ERR(distri_job_get_preview(job, &buf, NULL, &step), DISTRI_ERR_FAILED_PRECONDITION, "client was destroyed");
  CHECK(buf == NULL);
  distri_job_destroy(job);
}

static void test_previews_of_a_running_job(void) {
  distri_client_t* c = fake_client();
  distri_job_params_t jp;
  distri_job_t* job = NULL;
  distri_job_t* opened = NULL;
  distri_buffer_t* buf;
  distri_image_info_t info;
  distri_job_status_t st;
  uint32_t step = 0, later = 0;

  /* Without preview_every: never a preview, and the message says why. */
  preview_job(&jp, 3, 0);
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  EXPECT_ERR(distri_job_get_preview(job, &buf, NULL, &step), DISTRI_ERR_NOT_FOUND, "preview_every = 0");
  distri_job_status_init(&st);
  EXPECT_OK(distri_job_wait(job, 10000, &st));
  EXPECT_ERR(distri_job_get_preview(job, &buf, NULL, &step), DISTRI_ERR_NOT_FOUND, "preview_every = 0");
  distri_job_destroy(job);

  /* A long job: previews every 3 steps, image / 8 pixels, the newest one each time. */
  preview_job(&jp, 10000, 3);
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  distri_image_info_init(&info);
  buf = poll_preview(job, &info, &step);
  check_preview(buf, &info, 8, 6);
  CHECK(step >= 3 && step % 3 == 0 && step < 10000);
  CHECK(info.seed == 42 && info.attempt == 0);
  distri_buffer_destroy(buf);
  sleep_ms(30);
  EXPECT_OK(distri_job_get_preview(job, &buf, NULL, &later)); /* out_info is optional */
  CHECK(later > step && later % 3 == 0);
  distri_buffer_destroy(buf);
  /* A handle from distri_job_open does not know preview_every: it asks the cluster. */
  EXPECT_OK(distri_job_open(c, distri_job_id(job), &opened));
  EXPECT_OK(distri_job_get_preview(opened, &buf, &info, &step));
  check_preview(buf, &info, 8, 6);
  CHECK(step >= later && step % 3 == 0);
  distri_buffer_destroy(buf);
  /* The cluster drops the preview of an ended job; each handle keeps the last it received. */
  EXPECT_OK(distri_job_cancel(job));
  EXPECT_OK(distri_job_get_preview(job, &buf, &info, &step));
  CHECK(step == later);
  check_preview(buf, &info, 8, 6);
  distri_buffer_destroy(buf);
  distri_job_destroy(opened);
  EXPECT_OK(distri_job_open(c, distri_job_id(job), &opened));
  EXPECT_ERR(distri_job_get_preview(opened, &buf, NULL, &step), DISTRI_ERR_NOT_FOUND, "has ended");
  CHECK(strstr(distri_last_error(), "CANCELLED") != NULL);
  distri_job_destroy(opened);
  distri_job_destroy(job);

  /* distri_job_wait receives previews as it polls: the job's last one stays available. */
  preview_job(&jp, 200, 2);
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  EXPECT_OK(distri_job_wait(job, 10000, &st));
  CHECK(st.state == DISTRI_JOB_SUCCEEDED);
  EXPECT_OK(distri_job_get_preview(job, &buf, &info, &step));
  check_preview(buf, &info, 8, 6);
  CHECK(step >= 2 && step <= 198 && step % 2 == 0); /* never after the last step */
  distri_buffer_destroy(buf);
  distri_job_destroy(job);

  /* A job shorter than preview_every + 1 steps never has one. */
  preview_job(&jp, 5, 5);
  EXPECT_OK(distri_job_submit(c, &jp, &job));
  EXPECT_OK(distri_job_wait(job, 10000, &st));
  EXPECT_ERR(distri_job_get_preview(job, &buf, NULL, &step), DISTRI_ERR_NOT_FOUND, "SUCCEEDED");
  distri_job_destroy(job);
  distri_client_destroy(c);
}

/* A program built against version 1 of distri.h passes the smaller struct_size: accepted, and
 * nothing after it is read (the version 1 struct lives in a heap block of exactly its size, so
 * the AddressSanitizer build would catch a read past it): the job makes no previews. */
static distri_job_params_t* v1_params(uint32_t steps) {
  distri_job_params_t full;
  distri_job_params_t* v1 = (distri_job_params_t*)malloc(JOB_PARAMS_V1_SIZE);
  CHECK(v1 != NULL);
  preview_job(&full, steps, 0);
  full.struct_size = (uint32_t)JOB_PARAMS_V1_SIZE;
  full.struct_version = 1;
  memcpy(v1, &full, JOB_PARAMS_V1_SIZE);
  return v1;
}

static void test_version_1_job_params(void) {
  distri_client_t* c = fake_client();
  distri_job_params_t* v1;
  const distri_job_params_t* batch[2];
  distri_job_t* jobs[2];
  distri_buffer_t* buf = NULL;
  uint32_t step = 0;

  CHECK(DISTRI_JOB_PARAMS_VERSION == 2);
  CHECK(JOB_PARAMS_V1_SIZE == offsetof(distri_job_params_t, progress_user_data) + sizeof(void*));
  v1 = v1_params(10000);
  EXPECT_OK(distri_job_params_validate(v1));
  EXPECT_OK(distri_job_submit(c, v1, &jobs[0]));
  sleep_ms(20);
  EXPECT_ERR(distri_job_get_preview(jobs[0], &buf, NULL, &step), DISTRI_ERR_NOT_FOUND, "preview_every = 0");
  EXPECT_OK(distri_job_cancel(jobs[0]));
  distri_job_destroy(jobs[0]);
  free(v1);

  v1 = v1_params(2);
  EXPECT_OK(distri_client_generate(c, v1, 10000, &buf, NULL));
  CHECK(distri_buffer_size(buf) > 8);
  distri_buffer_destroy(buf);
  batch[0] = batch[1] = v1;
  EXPECT_OK(distri_job_submit_batch(c, batch, 2, jobs));
  distri_job_destroy(jobs[0]);
  distri_job_destroy(jobs[1]);
  /* Smaller than version 1: refused. */
  v1->struct_size = (uint32_t)JOB_PARAMS_V1_SIZE - 1;
  EXPECT_ERR(distri_job_params_validate(v1), DISTRI_ERR_INVALID_ARGUMENT, "smaller than the first version");
  free(v1);

  /* A size that ends before guidance_rescale (the last field of version 2): accepted, and
   * guidance_rescale is not read (heap block of exactly that size). */
  {
    const size_t size = offsetof(distri_job_params_t, guidance_rescale);
    distri_job_params_t full;
    distri_job_params_t* part = (distri_job_params_t*)malloc(size);
    CHECK(part != NULL);
    CHECK(size > JOB_PARAMS_V1_SIZE && size < sizeof(distri_job_params_t));
    preview_job(&full, 2, 1);
    full.struct_size = (uint32_t)size;
    memcpy(part, &full, size);
    EXPECT_OK(distri_job_params_validate(part));
    EXPECT_OK(distri_client_generate(c, part, 10000, &buf, NULL));
    CHECK(distri_buffer_size(buf) > 8);
    distri_buffer_destroy(buf);
    free(part);
  }
  distri_client_destroy(c);
}

int main(void) {
  test_bad_arguments();
  test_previews_of_a_running_job();
  test_version_1_job_params();
  printf("capi_preview_test: %d checks passed\n", g_checks);
  return 0;
}
