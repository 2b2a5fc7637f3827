/* Render one image through distri's C ABI.
 *   render --model /models/sdxl --out lighthouse.png "a lighthouse at dawn"
 *   render --address tcp://head:7070 --keys ~/.distri/keys "a lighthouse at dawn" */
#include "common.h"

/* Called inside distri_client_generate as denoising steps complete; 0 = keep going. */
static int on_progress(void* user_data, uint32_t step, uint32_t total_steps) {
  (void)user_data;
  fprintf(stderr, "\rstep %u/%u", step, total_steps);
  return 0;
}

int main(int argc, char** argv) {
  struct options o;
  distri_client_t* client;
  distri_job_params_t jp;
  distri_buffer_t* png = NULL;
  distri_image_info_t info;
  distri_status_t rc;
  int ok;

  parse_options(argc, argv, &o, "render.png");
  client = open_client(&o);

  fill_job(&o, o.prompts[0], &jp);
  jp.progress = on_progress;
  distri_image_info_init(&info);
  rc = distri_client_generate(client, &jp, -1 /* no timeout */, &png, &info);
  fprintf(stderr, "\n");
  if (rc != DISTRI_OK) {
    fprintf(stderr, "error: %s: %s\n", distri_status_name(rc), distri_last_error());
    distri_client_destroy(client);
    return 1;
  }
  ok = write_file(o.out, distri_buffer_data(png), distri_buffer_size(png));
  if (ok) {
    printf("wrote %s (%ux%u, seed %llu, %.0f ms on %u actor(s))\n", o.out, info.width, info.height,
           (unsigned long long)info.seed, info.total_ms, info.gang_size);
  }
  distri_buffer_destroy(png);
  distri_client_destroy(client);
  return ok ? 0 : 1;
}
