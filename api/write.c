/*
 * write.c — the write endpoints of the tools teams already run, and compressed bodies.
 *
 *   POST /api/v2/write   InfluxDB 2.x compatible: line protocol, `precision=ns|us|ms|s`
 *                        (default ns, as Influx), `org`/`bucket` accepted and ignored (one
 *                        metrics topic), 204 when every point is in Kafka. Telegraf's
 *                        outputs.influxdb_v2 and Influx client libraries write here; their
 *                        `Authorization: Token <t>` is taken as the API key <t> (server.c).
 *   POST /api/v1/write   Prometheus remote write 1.0: a snappy protobuf WriteRequest
 *                        (parse/remotewrite.c); 204 on success, 400 for what must not be sent
 *                        again (malformed, or samples the engine refuses), 5xx when Kafka
 *                        refused or did not answer in time (Prometheus retries those).
 *
 * Both hand a parser to nops__api_ingest_points (ingest.c), which produces each point to the
 * metrics topic keyed by series exactly as /ingest does and waits for Kafka without blocking the
 * server. A body sent with `Content-Encoding: gzip` (/ingest and /api/v2/write) is inflated
 * first, under api.body_limit — the limit holds for the decompressed size too, so a zip bomb
 * gets a 413 after at most that many bytes.
 */
#include "api/api_int.h"

#include <string.h>
#include <strings.h>

/* The value of a header up to its parameters (";"), without surrounding blanks. */
static size_t header_token(const char *v, const char **tok)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strcspn(v, ";, \t");
    *tok = v;
    return n;
}

static bool token_is(const char *tok, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(tok, want, n) == 0;
}

bool nops__api_body_decode(nops_api *api, struct MHD_Connection *c, request *rq, response *res)
{
    const char *ce = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_ENCODING);
    const char *tok;
    size_t n = ce ? header_token(ce, &tok) : 0;
    if (!n || token_is(tok, n, "identity"))
        return true;
    if (!token_is(tok, n, "gzip") && !token_is(tok, n, "x-gzip")) {
        nops__api_error(res, 415, "Content-Encoding %.40s is not supported here: send gzip or "
                        "no encoding", ce);
        return false;
    }
    nops_buf out = {0};
    const char *why = NULL;
    nops_err e = nops_ingest_gunzip(rq->body.b ? rq->body.b : "", rq->body.len,
                                    (size_t)api->p.body_limit, &out, &why);
    if (e != NOPS_OK) {
        nops_free(out.b);
        if (e == NOPS_RANGE)
            nops__api_error(res, 413, "gzip body decompresses past api.body_limit (%lld bytes)",
                            (long long)api->p.body_limit);
        else if (e == NOPS_PARSE)
            nops__api_error(res, 400, "Content-Encoding gzip: %s", why ? why : "bad gzip");
        else
            nops__api_error(res, 500, "out of memory");
        return false;
    }
    nops_free(rq->body.b);
    rq->body = out;
    return true;
}

/* ---- /api/v2/write ------------------------------------------------------------------------ */

static nops_err parse_lineproto(void *src, const char *body, size_t len, int64_t now_ns,
                                nops_point_fn fn, void *ud, nops_parse_stats *st)
{
    const nops_ts_precision *prec = src;
    return nops_ingest_parse_lineproto_prec(body, len, now_ns, *prec, fn, ud, st);
}

bool nops__api_influx_write(nops_api *api, struct MHD_Connection *c, request *rq, response *res)
{
    const char *p = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "precision");
    nops_ts_precision prec = NOPS_TS_NS;
    if (p && !nops_ingest_precision_parse(p, strlen(p), &prec)) {
        nops__api_error(res, 400, "precision must be ns, us, ms or s, not \"%.20s\"", p);
        return false;
    }
    if (!nops__api_body_decode(api, c, rq, res))
        return false;
    return nops__api_ingest_points(api, c, rq, res, NOPS__INGEST_INFLUX, parse_lineproto, &prec);
}

/* ---- /api/v1/write ------------------------------------------------------------------------ */

static nops_err parse_remote_write(void *src, const char *body, size_t len, int64_t now_ns,
                                   nops_point_fn fn, void *ud, nops_parse_stats *st)
{
    (void)now_ns; /* every sample carries its time */
    const size_t *max = src;
    return nops_ingest_parse_remote_write(body, len, *max, fn, ud, st);
}

bool nops__api_remote_write(nops_api *api, struct MHD_Connection *c, request *rq, response *res)
{
    const char *ce = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_ENCODING);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *tok;
    size_t n = ce ? header_token(ce, &tok) : 0;
    if (n && !token_is(tok, n, "snappy")) {
        nops__api_error(res, 415, "remote write bodies are snappy-compressed: Content-Encoding "
                        "%.40s is not supported", ce);
        return false;
    }
    n = ct ? header_token(ct, &tok) : 0;
    if (n && !token_is(tok, n, "application/x-protobuf")) {
        nops__api_error(res, 415, "remote write bodies are application/x-protobuf, not %.60s",
                        ct);
        return false;
    }
    size_t max = (size_t)api->p.body_limit;
    return nops__api_ingest_points(api, c, rq, res, NOPS__INGEST_REMOTE_WRITE,
                                   parse_remote_write, &max);
}
