/* Compiles distri.h as plain C99 with -Wall -Wextra -Werror -pedantic (test capi_header_c99),
 * and takes the address of every function so a declaration typo fails here. */
#include <distri/distri.h>

#if DISTRI_VERSION_NUMBER != DISTRI_VERSION_MAJOR * 10000 + DISTRI_VERSION_MINOR * 100 + DISTRI_VERSION_PATCH
#error "DISTRI_VERSION_NUMBER is inconsistent"
#endif

typedef void (*any_fn)(void);

int main(void) {
  distri_job_params_t jp;
  distri_connect_params_t cp;
  distri_local_params_t lp;
  distri_job_status_t st;
  distri_image_info_t ii;
  distri_cluster_info_t ci;
  any_fn fns[] = {
      (any_fn)distri_version, (any_fn)distri_version_number,
      (any_fn)distri_abi_version, (any_fn)distri_status_name,
      (any_fn)distri_last_error, (any_fn)distri_job_state_name,
      (any_fn)distri_log_set_level, (any_fn)distri_buffer_data,
      (any_fn)distri_buffer_size, (any_fn)distri_buffer_destroy,
      (any_fn)distri_connect_params_init, (any_fn)distri_client_connect,
      (any_fn)distri_local_params_init, (any_fn)distri_client_create_local,
      (any_fn)distri_client_destroy, (any_fn)distri_cluster_info_init,
      (any_fn)distri_client_get_cluster_info, (any_fn)distri_job_params_init,
      (any_fn)distri_job_params_validate, (any_fn)distri_job_submit,
      (any_fn)distri_job_submit_batch, (any_fn)distri_job_open,
      (any_fn)distri_job_destroy, (any_fn)distri_job_id,
      (any_fn)distri_job_status_init, (any_fn)distri_job_get_status,
      (any_fn)distri_job_wait, (any_fn)distri_job_cancel,
      (any_fn)distri_image_info_init, (any_fn)distri_job_get_result,
      (any_fn)distri_job_get_preview, (any_fn)distri_client_generate};
  enum distri_status_code code = DISTRI_ERR_FAILED_PRECONDITION;
  enum distri_job_state state = DISTRI_JOB_CANCELLED;
  enum distri_output_format format = DISTRI_OUTPUT_RGB8;
  enum distri_log_level level = DISTRI_LOG_OFF;
  (void)jp; (void)cp; (void)lp; (void)st; (void)ii; (void)ci;
  return (int)(sizeof(fns) / sizeof(fns[0])) + (int)code + (int)state + (int)format + (int)level == 0;
}
