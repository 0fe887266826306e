/*
 * api_fixture.h — the engine behind the HTTP API tests (api_fixture.c): set up once per test
 * binary by tapi_setup, torn down by tapi_teardown; the globals below are valid in between.
 */
#ifndef NOPS_TESTS_API_FIXTURE_H
#define NOPS_TESTS_API_FIXTURE_H

#include "api/api.h"
#include "tests/api/http.h"
#include "tests/testutil.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#define SECRET "test-secret-0123456789" /* the HS256 secret of api.jwt_secret */
#define ISSUER "neuralops-test"         /* api.jwt_issuer */

extern nops_registry *g_reg;          /* signed playbooks: "echo" */
extern nops_audit *g_audit;           /* the files audit trail */
extern nops_secret *g_audit_key;      /* the audit chain's key (in memory) */
extern nops_orchestrator *g_orch;     /* the files orchestrator */
extern nops_recommender *g_reco;      /* start_api's recommender (NULL unless a test sets it) */
extern nops_learner *g_learner;       /* start_api's learner, for /metrics (NULL the same) */
extern nops_secret *g_secret;         /* the engine's key for the orchestrators */
extern rd_kafka_t *g_cluster;         /* hosts the mock cluster */
extern char g_dir[];                  /* the test's directory */
extern nops_detect_params g_dp;       /* detector settings of the pipeline */
extern nops_sinks *g_sinks;           /* JSONL sink + the store */
extern nops_store *g_store;           /* what GET /signals and /incidents read */
extern nops_pipeline *g_pipe;         /* consuming neuralops.metrics */
extern nops_api *g_api;               /* the API under test */
extern int g_port;                    /* its port */
extern char g_boot[512];              /* the mock cluster's bootstrap servers */

extern const char *H_VIEWER[];        /* headers: a viewer's key */
extern const char *H_OPERATOR[];      /* an operator's key */
extern const char *H_ADMIN[];         /* an org-admin's key */
extern const char *H_ADMIN_JSON[];    /* an org-admin's key, JSON body */
extern const char *H_OP_TEXT[];       /* an operator's key, text body */

int tapi_setup(void **state);
int tapi_teardown(void **state);

void sleep_ms(long ms);
/** The API settings the fixture uses (keys for the three roles, JWT, generous limits). */
void api_params(nops_api_params *p);
/** An API over the fixture's engine with settings p, started. */
nops_api *start_api(const nops_api_params *p, char *boot);
/** The body as JSON (fails the test when it is not). */
json_t *json_of(const http_res *r);
/** Assert an error answer: status, the error shape, and `needle` in the message; frees r. */
void expect_error(http_res r, long status, const char *needle);
/** The status of r; frees r. */
long status_of(http_res r);
/** An HS256 token for `payload` signed with `secret`, as an Authorization header line. */
void bearer(const char *payload, const char *secret, char *out, size_t cap);

#endif
