/* Render several prompts at once: one batch submit, then each job is waited for with its
 * progress, written as <out-dir>/NNN.png, and listed in <out-dir>/manifest.jsonl.
 *   batch --model /models/sdxl --out-dir renders "a cat" "a dog" "a lighthouse" */
#include <errno.h>
#include <sys/stat.h>

#include "common.h"

static int on_progress(void* user_data, uint32_t step, uint32_t total_steps) {
  fprintf(stderr, "\rjob %d: step %u/%u", *(int*)user_data, step, total_steps);
  return 0;
}

/* The prompt as a JSON string body (quotes, backslashes and control characters escaped). */
static void json_string(FILE* f, const char* s) {
  fputc('"', f);
  for (; *s; ++s) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

int main(int argc, char** argv) {
  struct options o;
  distri_client_t* client;
  distri_job_params_t* params;
  const distri_job_params_t** ptrs;
  distri_job_t** jobs;
  int* indices;
  char path[4096];
  FILE* manifest;
  distri_status_t rc;
  int i, failures = 0;

  parse_options(argc, argv, &o, "batch-out");
  if (mkdir(o.out, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "error: cannot create %s\n", o.out);
    return 1;
  }
  client = open_client(&o);

  params = calloc((size_t)o.num_prompts, sizeof *params);
  ptrs = calloc((size_t)o.num_prompts, sizeof *ptrs);
  jobs = calloc((size_t)o.num_prompts, sizeof *jobs);
  indices = calloc((size_t)o.num_prompts, sizeof *indices);
  if (!params || !ptrs || !jobs || !indices) return 1;
  for (i = 0; i < o.num_prompts; ++i) {
    fill_job(&o, o.prompts[i], &params[i]);
    params[i].seed = o.seed + (uint64_t)i;
    indices[i] = i;
    params[i].progress = on_progress;
    params[i].progress_user_data = &indices[i];
    ptrs[i] = &params[i];
  }
  rc = distri_job_submit_batch(client, ptrs, (size_t)o.num_prompts, jobs);
  if (rc != DISTRI_OK) {
    fprintf(stderr, "error: %s: %s\n", distri_status_name(rc), distri_last_error());
    distri_client_destroy(client);
    return 1;
  }

  snprintf(path, sizeof path, "%s/manifest.jsonl", o.out);
  manifest = fopen(path, "w");
  if (manifest == NULL) return 1;
  for (i = 0; i < o.num_prompts; ++i) {
    distri_job_status_t st;
    distri_buffer_t* png = NULL;
    distri_image_info_t info;
    distri_job_status_init(&st);
    distri_image_info_init(&info);
    rc = distri_job_wait(jobs[i], -1, &st);
    fprintf(stderr, "\n");
    if (rc == DISTRI_OK) rc = distri_job_get_result(jobs[i], &png, &info);
    if (rc != DISTRI_OK) {
      fprintf(stderr, "job %d (%s): %s: %s\n", i, distri_job_id(jobs[i]), distri_status_name(rc), distri_last_error());
      ++failures;
    } else {
      snprintf(path, sizeof path, "%s/%03d.png", o.out, i);
      if (!write_file(path, distri_buffer_data(png), distri_buffer_size(png))) ++failures;
      fprintf(manifest, "{\"file\": \"%03d.png\", \"job_id\": \"%s\", \"seed\": %llu, \"prompt\": ", i,
              distri_job_id(jobs[i]), (unsigned long long)info.seed);
      json_string(manifest, o.prompts[i]);
      fprintf(manifest, "}\n");
      printf("wrote %s\n", path);
    }
    distri_buffer_destroy(png);
    distri_job_destroy(jobs[i]);
  }
  fclose(manifest);
  distri_client_destroy(client);
  free(params);
  free(ptrs);
  free(jobs);
  free(indices);
  return failures == 0 ? 0 : 1;
}
