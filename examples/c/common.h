/* Shared by render.c and batch.c: command-line flags and connecting (embedded cluster or
 * running one). Kept in a header so each example stays one readable file. */
#ifndef DISTRI_EXAMPLES_COMMON_H_
#define DISTRI_EXAMPLES_COMMON_H_

#include <distri/distri.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct options {
  const char* model;   /* --model DIR: embedded cluster */
  const char* address; /* --address ADDR: running cluster */
  const char* keys;    /* --keys DIR */
  int cpu;             /* --cpu: embedded cluster on CPU actors only */
  const char* out;     /* --out FILE / --out-dir DIR */
  uint32_t size, steps;
  uint64_t seed;
  const char* sampler;
  const char* negative;
  char** prompts; /* the remaining arguments */
  int num_prompts;
};

static void usage(const char* prog) {
  fprintf(stderr,
          "usage: %s (--model DIR [--cpu] | --address ADDR [--keys DIR]) [--out PATH] [--size N]\n"
          "          [--steps N] [--seed N] [--sampler NAME] [--negative TEXT] PROMPT...\n",
          prog);
  exit(2);
}

static void parse_options(int argc, char** argv, struct options* o, const char* default_out) {
  int i;
  memset(o, 0, sizeof *o);
  o->out = default_out;
  o->size = 1024;
  o->steps = 30;
  for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; ++i) {
    const char* flag = argv[i];
    if (strcmp(flag, "--cpu") == 0) {
      o->cpu = 1;
      continue;
    }
    if (i + 1 >= argc) usage(argv[0]);
    if (strcmp(flag, "--model") == 0) o->model = argv[++i];
    else if (strcmp(flag, "--address") == 0) o->address = argv[++i];
    else if (strcmp(flag, "--keys") == 0) o->keys = argv[++i];
    else if (strcmp(flag, "--out") == 0 || strcmp(flag, "--out-dir") == 0) o->out = argv[++i];
    else if (strcmp(flag, "--size") == 0) o->size = (uint32_t)strtoul(argv[++i], NULL, 10);
    else if (strcmp(flag, "--steps") == 0) o->steps = (uint32_t)strtoul(argv[++i], NULL, 10);
    else if (strcmp(flag, "--seed") == 0) o->seed = strtoull(argv[++i], NULL, 10);
    else if (strcmp(flag, "--sampler") == 0) o->sampler = argv[++i];
    else if (strcmp(flag, "--negative") == 0) o->negative = argv[++i];
    else usage(argv[0]);
  }
  if ((o->model == NULL) == (o->address == NULL) || i >= argc) usage(argv[0]);
  o->prompts = argv + i;
  o->num_prompts = argc - i;
}

/* An embedded cluster (--model) or a connection (--address). Exits on error. */
static distri_client_t* open_client(const struct options* o) {
  distri_client_t* client = NULL;
  distri_status_t rc;
  if (o->model != NULL) {
    distri_local_params_t lp;
    distri_local_params_init(&lp);
    lp.model_path = o->model;
    if (o->cpu) lp.gpus = 0;
    fprintf(stderr, "starting an embedded cluster for %s ...\n", o->model);
    rc = distri_client_create_local(&lp, &client);
  } else {
    distri_connect_params_t cp;
    distri_connect_params_init(&cp);
    cp.address = o->address;
    cp.key_dir = o->keys;
    rc = distri_client_connect(&cp, &client);
  }
  if (rc != DISTRI_OK) {
    fprintf(stderr, "error: %s: %s\n", distri_status_name(rc), distri_last_error());
    exit(1);
  }
  return client;
}

static void fill_job(const struct options* o, const char* prompt, distri_job_params_t* jp) {
  distri_job_params_init(jp);
  jp->prompt = prompt;
  jp->negative_prompt = o->negative;
  jp->width = jp->height = o->size;
  jp->steps = o->steps;
  jp->seed = o->seed;
  jp->sampler = o->sampler;
}

static int write_file(const char* path, const uint8_t* data, size_t size) {
  FILE* f = fopen(path, "wb");
  int ok = f != NULL && fwrite(data, 1, size, f) == size;
  if (f != NULL && fclose(f) != 0) ok = 0;
  if (!ok) fprintf(stderr, "error: cannot write %s\n", path);
  return ok;
}

#endif /* DISTRI_EXAMPLES_COMMON_H_ */
