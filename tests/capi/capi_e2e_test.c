/* End to end through the C ABI: start the embedded cluster (head + node agent + one CPU
 * distri-worker) on the tiny model, render the job of tests/capi/e2e_params.txt and check that
 * its pixels equal `distri generate`'s (reference.rgb from the fixture); then PNG output,
 * latent previews, a batch, a cancelled job, and calls after the client is destroyed.
 *   capi_e2e_test MODEL_DIR REFERENCE.rgb */
#define _POSIX_C_SOURCE 200809L
#include <distri/distri.h>

#include "capi_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  unsigned char* data;
  long n;
  CHECK(f != NULL);
  CHECK(fseek(f, 0, SEEK_END) == 0);
  n = ftell(f);
  CHECK(n >= 0);
  rewind(f);
  data = (unsigned char*)malloc((size_t)n + 1);
  CHECK(data != NULL);
  CHECK(fread(data, 1, (size_t)n, f) == (size_t)n);
  fclose(f);
  *size = (size_t)n;
  return data;
}

static void e2e_job(distri_job_params_t* jp) {
  distri_job_params_init(jp);
  jp->prompt = "a lighthouse at dawn";
  jp->negative_prompt = "blurry";
  jp->width = 128;
  jp->height = 128;
  jp->steps = 4;
  jp->guidance = 5.0;
  jp->seed = 42;
  jp->sampler = "euler";
}

static int g_progress = 0;
static int on_progress(void* user, uint32_t step, uint32_t total) {
  (void)user;
  CHECK(step <= total && total == 4);
  ++g_progress;
  return 0;
}

int main(int argc, char** argv) {
  distri_local_params_t lp;
  distri_client_t* client = NULL;
  distri_job_params_t jp;
  distri_buffer_t* buf = NULL;
  distri_image_info_t info;
  distri_job_status_t st;
  distri_job_t* job = NULL;
  uint32_t step = 0;
  size_t ref_size = 0;
  unsigned char* ref;

  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL_DIR REFERENCE.rgb\n", argv[0]);
    return 2;
  }
  ref = read_file(argv[2], &ref_size);
  CHECK(ref_size == 128 * 128 * 3);

  distri_local_params_init(&lp);
  lp.model_path = argv[1];
  lp.gpus = 0; /* CPU, like the reference */
  lp.cpu_actors = 1;
  lp.startup_timeout_ms = 240000;
  if (distri_client_create_local(&lp, &client) != DISTRI_OK) {
    fprintf(stderr, "distri_client_create_local: %s\n", distri_last_error());
    return 1;
  }

  /* The image equals `distri generate`'s, pixel for pixel. */
  e2e_job(&jp);
  jp.output_format = DISTRI_OUTPUT_RGB8;
  jp.progress = on_progress;
  distri_image_info_init(&info);
  CHECK(distri_client_generate(client, &jp, 240000, &buf, &info) == DISTRI_OK);
  CHECK(info.format == DISTRI_OUTPUT_RGB8 && info.width == 128 && info.height == 128 && info.stride == 384);
  CHECK(info.seed == 42 && info.gang_size >= 1);
  CHECK(distri_buffer_size(buf) == ref_size);
  CHECK(memcmp(distri_buffer_data(buf), ref, ref_size) == 0);
  CHECK(g_progress >= 1);
  distri_buffer_destroy(buf);
  printf("rgb8 image equals distri generate's (%u ms)\n", (unsigned)info.total_ms);

  /* PNG output. */
  e2e_job(&jp);
  CHECK(distri_client_generate(client, &jp, 240000, &buf, &info) == DISTRI_OK);
  CHECK(info.format == DISTRI_OUTPUT_PNG && distri_buffer_size(buf) > 8);
  CHECK(memcmp(distri_buffer_data(buf), "\x89PNG\r\n\x1a\n", 8) == 0);
  distri_buffer_destroy(buf);

  /* Latent previews after every step: distri_job_wait keeps the newest one it received, a
   * PNG of 128 / 8 = 16 pixels square taken after a step before the last. */
  e2e_job(&jp);
  jp.steps = 24;
  jp.preview_every = 1;
  CHECK(distri_job_submit(client, &jp, &job) == DISTRI_OK);
  distri_job_status_init(&st);
  CHECK(distri_job_wait(job, 240000, &st) == DISTRI_OK && st.state == DISTRI_JOB_SUCCEEDED);
  distri_image_info_init(&info);
  CHECK(distri_job_get_preview(job, &buf, &info, &step) == DISTRI_OK);
  CHECK(step >= 1 && step <= 23);
  CHECK(info.format == DISTRI_OUTPUT_PNG && info.width == 16 && info.height == 16 && info.seed == 42);
  {
    const unsigned char* d = distri_buffer_data(buf);
    static const unsigned char ihdr_16x16[] = {'I', 'H', 'D', 'R', 0, 0, 0, 16, 0, 0, 0, 16};
    CHECK(distri_buffer_size(buf) > 24 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0);
    CHECK(memcmp(d + 12, ihdr_16x16, sizeof ihdr_16x16) == 0);
  }
  printf("preview after step %u of 24: %zu bytes\n", (unsigned)step, distri_buffer_size(buf));
  distri_buffer_destroy(buf);
  distri_job_destroy(job);

  /* Bad arguments against the real cluster: refused by the head or by the library. */
  e2e_job(&jp);
  jp.width = 100; /* not a multiple of 8 */
  CHECK(distri_job_submit(client, &jp, &job) == DISTRI_ERR_INVALID_ARGUMENT && job == NULL);
  CHECK(strstr(distri_last_error(), "multiples of 8") != NULL);
  e2e_job(&jp);
  jp.prompt = "\xC3\x28";
  CHECK(distri_job_submit(client, &jp, &job) == DISTRI_ERR_INVALID_ARGUMENT && job == NULL);
  CHECK(distri_job_open(client, "0123456789abcdef0123456789abcdef", &job) == DISTRI_ERR_NOT_FOUND);

  /* A cancelled job. */
  e2e_job(&jp);
  jp.steps = 500;
  CHECK(distri_job_submit(client, &jp, &job) == DISTRI_OK);
  CHECK(distri_job_cancel(job) == DISTRI_OK);
  distri_job_status_init(&st);
  CHECK(distri_job_wait(job, 60000, &st) == DISTRI_OK);
  CHECK(st.state == DISTRI_JOB_CANCELLED);
  CHECK(distri_job_get_result(job, &buf, NULL) == DISTRI_ERR_CANCELLED && buf == NULL);
  CHECK(distri_job_get_preview(job, &buf, NULL, &step) == DISTRI_ERR_NOT_FOUND && buf == NULL);
  CHECK(strstr(distri_last_error(), "preview_every = 0") != NULL);
  distri_job_destroy(job);

  /* A batch of two. */
  {
    distri_job_params_t a, b;
    const distri_job_params_t* pp[2];
    distri_job_t* jobs[2];
    int i;
    e2e_job(&a);
    e2e_job(&b);
    a.steps = b.steps = 2;
    b.seed = 7;
    pp[0] = &a;
    pp[1] = &b;
    /* The head gets the batch as one message: one spec it refuses refuses the whole batch
     * (one request per job would have had jobs[0] accepted, then cancelled). */
    b.width = 100; /* not a multiple of 8: passes the library's checks, refused by the head */
    jobs[0] = jobs[1] = (distri_job_t*)&st;
    CHECK(distri_job_submit_batch(client, pp, 2, jobs) == DISTRI_ERR_INVALID_ARGUMENT);
    CHECK(jobs[0] == NULL && jobs[1] == NULL);
    CHECK(strstr(distri_last_error(), "params[1]: ") != NULL);
    CHECK(strstr(distri_last_error(), "jobs[1] of 2: width and height must be multiples of 8") != NULL);
    CHECK(strstr(distri_last_error(), "cancelled") == NULL);
    b.width = 128;
    CHECK(distri_job_submit_batch(client, pp, 2, jobs) == DISTRI_OK);
    for (i = 0; i < 2; ++i) {
      CHECK(distri_job_wait(jobs[i], 240000, &st) == DISTRI_OK && st.state == DISTRI_JOB_SUCCEEDED);
      CHECK(distri_job_get_result(jobs[i], &buf, &info) == DISTRI_OK);
      CHECK(info.seed == (i == 0 ? 42u : 7u));
      distri_buffer_destroy(buf);
    }
    /* Destroying the client stops the cluster; the jobs then fail cleanly. */
    distri_client_destroy(client);
    CHECK(distri_job_get_status(jobs[0], &st) == DISTRI_ERR_FAILED_PRECONDITION);
    CHECK(distri_job_submit(client, &a, &job) == DISTRI_ERR_INVALID_ARGUMENT);
    distri_job_destroy(jobs[0]);
    distri_job_destroy(jobs[1]);
  }
  free(ref);
  printf("capi_e2e_test: ok\n");
  return 0;
}
