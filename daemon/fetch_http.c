/* fetch_http.c: http(s) sources through libcurl: redirects judged, stalls, limits, and a
 * download that drops tried again, resuming where its stream stopped. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fetch.h"
#include "log.h"

enum curl_abort { ABORT_NONE, ABORT_CANCEL, ABORT_STALL, ABORT_DEADLINE, ABORT_REDIRECT };

struct curl_ctx {
        const struct fetch_req *req;
        struct hv_error *e;
        CURL *curl;
        bool total_sent;
        int r;
        enum curl_abort abort;
        uint64_t start_usec, last_data_usec;
        curl_off_t last_dlnow;
        bool first_internal;
        char redirect_ip[64];
        /* across tries: what reached req->data, and the first response's validator */
        uint64_t delivered;
        char etag[256], last_modified[64];
        /* this try: resumed with Range, its body's first bytes seen, its response's headers */
        bool resumed, body_started;
        char cur_etag[256], cur_last_modified[64], via[256], x_cache[128];
};

/* MaxBandwidth: every download of the process draws from this one budget. */
static struct {
        pthread_mutex_t mtx;
        struct hv_rate rate;
} host_budget = { .mtx = PTHREAD_MUTEX_INITIALIZER };

/* Takes n bytes from the host's budget and, past it, waits (in slices that watch for a cancel;
 * the unread bytes hold the sender back through TCP). false: canceled meanwhile. */
static bool throttle(const struct fetch_req *req, size_t n) {
        uint64_t rate = req->conf->max_bandwidth;
        if (!rate)
                return true;
        pthread_mutex_lock(&host_budget.mtx);
        uint64_t wait = hv_rate_take(&host_budget.rate, hv_mono_usec(), n, rate);
        pthread_mutex_unlock(&host_budget.mtx);
        while (wait) {
                if (atomic_load(req->cancel))
                        return false;
                uint64_t step = wait < 100000 ? wait : 100000;
                usleep((useconds_t)step);
                wait -= step;
        }
        return true;
}

/* A header line of the response (of each response: a redirect's too). */
static size_t curl_header(char *p, size_t size, size_t nmemb, void *ud) {
        struct curl_ctx *c = ud;
        size_t n = size * nmemb;
        char line[512];
        size_t l = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
        memcpy(line, p, l);
        line[l] = 0;
        line[strcspn(line, "\r\n")] = 0;
        if (strncmp(line, "HTTP/", 5) == 0) { /* a new response: its headers start */
                c->cur_etag[0] = c->cur_last_modified[0] = c->via[0] = c->x_cache[0] = 0;
                return n;
        }
        static const struct { const char *name; size_t off, len; } keep[] = {
                { "etag:", offsetof(struct curl_ctx, cur_etag), sizeof(((struct curl_ctx *)0)->cur_etag) },
                { "last-modified:", offsetof(struct curl_ctx, cur_last_modified), sizeof(((struct curl_ctx *)0)->cur_last_modified) },
                { "via:", offsetof(struct curl_ctx, via), sizeof(((struct curl_ctx *)0)->via) },
                { "x-cache:", offsetof(struct curl_ctx, x_cache), sizeof(((struct curl_ctx *)0)->x_cache) },
        };
        for (size_t i = 0; i < ELEMENTSOF(keep); i++) {
                size_t kl = strlen(keep[i].name);
                if (strncasecmp(line, keep[i].name, kl) != 0)
                        continue;
                const char *v = line + kl;
                v += strspn(v, " \t");
                /* a validator goes back into a request header: printable ASCII only */
                bool clean = true;
                for (const char *q = v; *q; q++)
                        clean &= (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x7f;
                if (clean)
                        snprintf((char *)c + keep[i].off, keep[i].len, "%s", v);
        }
        return n;
}

/* The first bytes of a try's body: a resumed try must have got the rest of the same file. */
static int body_start(struct curl_ctx *c) {
        c->body_started = true;
        long code = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
        if (!c->resumed) {
                snprintf(c->etag, sizeof(c->etag), "%s", c->cur_etag);
                snprintf(c->last_modified, sizeof(c->last_modified), "%s", c->cur_last_modified);
                if (c->req->validators)
                        c->req->validators(c->req->userdata, c->etag, c->last_modified);
                if (c->via[0] || c->x_cache[0])
                        log_info("fetching %s: through a cache (Via: %s, X-Cache: %s)", c->req->uri_shown, c->via[0] ? c->via : "-",
                                 c->x_cache[0] ? c->x_cache : "-");
                return 0;
        }
        if (code == 206)
                return 0;
        log_warning("fetching %s: the server answered the resumed request with %ld%s: starting over from byte 0", c->req->uri_shown,
                    code, code == 200 ? " (it ignores Range, or the file changed)" : "");
        return -ERESTART;
}

static size_t curl_write(char *p, size_t size, size_t nmemb, void *ud) {
        struct curl_ctx *c = ud;
        size_t n = size * nmemb;
        if (!c->body_started && (c->r = body_start(c)) < 0)
                return 0;
        if (!c->total_sent) {
                c->total_sent = true;
                curl_off_t cl = -1;
                curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
                c->r = c->req->total(c->req->userdata, cl > 0 ? (uint64_t)cl : 0, c->e);
                if (c->r < 0)
                        return 0;
        }
        c->r = c->req->data(c->req->userdata, (const uint8_t *)p, n, c->e);
        if (c->r < 0)
                return 0;
        c->delivered += n;
        if (!throttle(c->req, n)) {
                c->abort = ABORT_CANCEL;
                return 0;
        }
        return n;
}

/* Called about once a second even when nothing arrives: cancel, stall and the overall deadline. */
static int curl_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
        (void)dt; (void)ut; (void)un;
        struct curl_ctx *c = ud;
        const struct hv_conf *cf = c->req->conf;
        uint64_t now = hv_mono_usec();
        if (atomic_load(c->req->cancel)) {
                c->abort = ABORT_CANCEL;
                return 1;
        }
        if (dn != c->last_dlnow) {
                c->last_dlnow = dn;
                c->last_data_usec = now;
        } else if (now - c->last_data_usec > (uint64_t)cf->stall_timeout_sec * 1000000ULL) {
                c->abort = ABORT_STALL;
                return 1;
        }
        if (cf->max_download_time_sec && now - c->start_usec > (uint64_t)cf->max_download_time_sec * 1000000ULL) {
                c->abort = ABORT_DEADLINE;
                return 1;
        }
        return 0;
}

/* Loopback and link-local addresses belong to this host (and its metadata services). */
static bool host_internal(const struct sockaddr *sa, char *text, size_t len) {
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
                uint32_t a = ntohl(in->sin_addr.s_addr);
                inet_ntop(AF_INET, &in->sin_addr, text, (socklen_t)len);
                return (a >> 24) == 127 || (a >> 16) == 0xa9fe || a == 0;
        }
        if (sa->sa_family == AF_INET6) {
                const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
                inet_ntop(AF_INET6, a6, text, (socklen_t)len);
                if (IN6_IS_ADDR_LOOPBACK(a6) || IN6_IS_ADDR_LINKLOCAL(a6) || IN6_IS_ADDR_UNSPECIFIED(a6))
                        return true;
                if (IN6_IS_ADDR_V4MAPPED(a6)) {
                        struct sockaddr_in v4 = { .sin_family = AF_INET };
                        memcpy(&v4.sin_addr, &a6->s6_addr[12], 4);
                        return host_internal((const struct sockaddr *)&v4, text, len);
                }
        }
        return false;
}

/* Every connection curl opens (the first request's, and a redirect's to another host): a
 * redirect may not lead to this host's own services unless the caller's URL already did (then
 * the caller could name them anyway). A socket callback rather than CURLOPT_PREREQFUNCTION:
 * it exists in every libcurl a site runs (EL9 has 7.76). */
static curl_socket_t curl_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
        (void)purpose;
        struct curl_ctx *c = ud;
        char text[INET6_ADDRSTRLEN] = "?";
        bool internal = host_internal(&a->addr, text, sizeof(text));
        long redirects = 0;
        if (curl_easy_getinfo(c->curl, CURLINFO_REDIRECT_COUNT, &redirects) != CURLE_OK)
                redirects = 1; /* unknown: judge it as a redirect */
        if (redirects == 0)
                c->first_internal |= internal;
        else if (internal && !c->first_internal && !c->req->conf->allow_loopback_redirects) {
                snprintf(c->redirect_ip, sizeof(c->redirect_ip), "%s", text);
                c->abort = ABORT_REDIRECT;
                return CURL_SOCKET_BAD;
        }
        return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static int curl_result(struct curl_ctx *c, CURLcode cr, const char *errbuf, struct hv_error *e) {
        const struct fetch_req *req = c->req;
        const struct hv_conf *cf = req->conf;
        long code = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
        char a[32];
        if (cr == CURLE_OK && !c->total_sent)
                return req->total(req->userdata, 0, e); /* an empty body */
        if (cr == CURLE_OK)
                return 0;
        if (cr == CURLE_WRITE_ERROR && c->r == -ERESTART)
                return hv_fail(e, HV_E_FETCH_FAILED, ERESTART, "the server of %s cannot resume the download", req->uri_shown);
        if (cr == CURLE_WRITE_ERROR && c->r < 0)
                return c->r; /* our own error, already described */
        switch (c->abort) {
        case ABORT_CANCEL:
                return hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
        case ABORT_STALL:
                return hv_fail(e, HV_E_FETCH_FAILED, ETIMEDOUT, "download stalled: no data for %u s from %s (StallTimeoutSec)",
                               cf->stall_timeout_sec, req->uri_shown);
        case ABORT_DEADLINE:
                return hv_fail(e, HV_E_FETCH_FAILED, ETIMEDOUT, "download of %s did not finish within %u s (MaxDownloadTimeSec)",
                               req->uri_shown, cf->max_download_time_sec);
        case ABORT_REDIRECT:
                return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM,
                               "%s redirected to %s, an address of this host (loopback or link-local): refused "
                               "(AllowLoopbackRedirects=no)", req->uri_shown, c->redirect_ip);
        case ABORT_NONE:
                break;
        }
        if (cr == CURLE_HTTP_RETURNED_ERROR)
                return hv_fail(e, HV_E_FETCH_FAILED, EIO, "HTTP status %ld fetching %s", code, req->uri_shown);
        if (cr == CURLE_OPERATION_TIMEDOUT && c->total_sent)
                return hv_fail(e, HV_E_FETCH_FAILED, ETIMEDOUT, "download too slow: below %s/s for %u s from %s (LowSpeedLimit)",
                               hv_format_size(cf->low_speed_limit, a, sizeof(a)), cf->low_speed_time_sec, req->uri_shown);
        if (cr == CURLE_TOO_MANY_REDIRECTS)
                return hv_fail(e, HV_E_FETCH_FAILED, ELOOP, "more than %u redirects fetching %s", cf->max_redirects, req->uri_shown);
        if (cr == CURLE_UNSUPPORTED_PROTOCOL && curl_easy_getinfo(c->curl, CURLINFO_REDIRECT_COUNT, &code) == CURLE_OK && code > 0)
                return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM, "%s redirected to a scheme that is not allowed (an https source "
                               "may only redirect to https)", req->uri_shown);
        return hv_fail(e, HV_E_FETCH_FAILED, EIO, "fetching %s: %s", req->uri_shown, errbuf[0] ? errbuf : curl_easy_strerror(cr));
}

/* Whether a failed try is worth another: the connection or the server failed, not the
 * request (4xx), the caller (cancel), the limits or our own checks. */
static bool retryable(const struct curl_ctx *c, CURLcode cr) {
        if (c->abort == ABORT_STALL)
                return true;
        if (c->abort != ABORT_NONE || (cr == CURLE_WRITE_ERROR && c->r < 0))
                return false;
        long code = 0;
        switch (cr) {
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return true;
        case CURLE_OPERATION_TIMEDOUT: /* connect timeout, or slower than LowSpeedLimit */
                return true;
        case CURLE_HTTP_RETURNED_ERROR:
                curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
                return code >= 500 || code == 408 || code == 429;
        default:
                return false;
        }
}

static bool setup(CURL *curl, const struct fetch_req *req, struct curl_ctx *c, char *errbuf) {
        const struct hv_conf *cf = req->conf;
        /* under MaxBandwidth a download gets its share; the low-speed limit may not fail it for that */
        uint64_t low_speed = cf->low_speed_limit, share = cf->max_bandwidth / (2 * (cf->max_concurrent ? cf->max_concurrent : 1));
        if (cf->max_bandwidth && low_speed > share)
                low_speed = share ? share : 1;
        /* no downgrade: an https source may only be redirected to https */
        const char *redir = strncmp(req->uri, "https://", 8) == 0 ? "https" : "http,https";
        return curl_easy_setopt(curl, CURLOPT_URL, req->uri) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, redir) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_MAXREDIRS, (long)cf->max_redirects) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_USERAGENT, HV_USER_AGENT) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)cf->connect_timeout_sec) == CURLE_OK &&
               /* the minimum average rate; a complete stall is caught sooner by curl_progress */
               (!low_speed ||
                (curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, (long)low_speed) == CURLE_OK &&
                 curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)cf->low_speed_time_sec) == CURLE_OK)) &&
               curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 256L * 1024) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, curl_write) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_WRITEDATA, c) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, curl_header) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_HEADERDATA, c) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, curl_progress) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_XFERINFODATA, c) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, curl_open_socket) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, c) == CURLE_OK &&
               (!cf->max_bandwidth ||
                curl_easy_setopt(curl, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)cf->max_bandwidth) == CURLE_OK) &&
               (!cf->ca_path[0] || curl_easy_setopt(curl, CURLOPT_CAINFO, cf->ca_path) == CURLE_OK) &&
               (!cf->proxy[0] || curl_easy_setopt(curl, CURLOPT_PROXY, cf->proxy) == CURLE_OK);
}

/* Sleeps delay_sec, watching for a cancel. */
static bool backoff_wait(const struct fetch_req *req, unsigned delay_sec) {
        uint64_t until = hv_mono_usec() + (uint64_t)delay_sec * 1000000ULL;
        while (hv_mono_usec() < until) {
                if (atomic_load(req->cancel))
                        return false;
                usleep(100000);
        }
        return true;
}

int fetch_http(const struct fetch_req *req, struct hv_error *e) {
        const struct hv_conf *cf = req->conf;
        uint64_t now = hv_mono_usec();
        struct curl_ctx c = { .req = req, .e = e, .start_usec = now };
        for (unsigned attempt = 0;; attempt++) {
                CURL *curl = curl_easy_init();
                if (!curl)
                        return hv_fail(e, HV_E_ERRNO, ENOMEM, "cannot initialise libcurl");
                char errbuf[CURL_ERROR_SIZE] = "", if_range[320] = "";
                struct curl_slist *headers = NULL;
                c.curl = curl;
                c.r = 0;
                c.abort = ABORT_NONE;
                c.last_data_usec = hv_mono_usec();
                c.last_dlnow = 0;
                c.body_started = false;
                c.resumed = c.delivered > 0;
                bool ok = setup(curl, req, &c, errbuf);
                char cond[2][320] = { "", "" };
                if (ok && !c.resumed && req->if_none_match && *req->if_none_match)
                        snprintf(cond[0], sizeof(cond[0]), "If-None-Match: %s", req->if_none_match);
                if (ok && !c.resumed && req->if_modified_since && *req->if_modified_since)
                        snprintf(cond[1], sizeof(cond[1]), "If-Modified-Since: %s", req->if_modified_since);
                for (int k = 0; k < 2 && ok; k++)
                        if (cond[k][0]) {
                                struct curl_slist *n = curl_slist_append(headers, cond[k]);
                                ok = n != NULL;
                                headers = n ? n : headers;
                        }
                if (ok && headers && !c.resumed)
                        ok = curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers) == CURLE_OK;
                if (ok && c.resumed) {
                        /* the rest of the same file, or (If-Range) the whole of a changed one */
                        snprintf(if_range, sizeof(if_range), "If-Range: %s", c.etag[0] ? c.etag : c.last_modified);
                        ok = (headers = curl_slist_append(NULL, if_range)) &&
                             curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
                             curl_easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)c.delivered) == CURLE_OK;
                }
                if (!ok) {
                        curl_slist_free_all(headers);
                        curl_easy_cleanup(curl);
                        return hv_fail(e, HV_E_ERRNO, EINVAL, "cannot configure libcurl");
                }
                CURLcode cr = curl_easy_perform(curl);
                long code = 0;
                if (cr == CURLE_OK && curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 304) {
                        curl_slist_free_all(headers);
                        curl_easy_cleanup(curl);
                        return hv_fail(e, HV_E_FETCH_FAILED, EALREADY, "%s is not modified (HTTP 304)", req->uri_shown);
                }
                if (cr == CURLE_RANGE_ERROR && c.resumed) { /* curl saw a 200 where the rest (206) was asked for */
                        curl_slist_free_all(headers);
                        curl_easy_cleanup(curl);
                        log_warning("fetching %s: the server answered the resumed request with the whole file (it ignores Range, "
                                    "or the file changed): starting over from byte 0", req->uri_shown);
                        return hv_fail(e, HV_E_FETCH_FAILED, ERESTART, "the server of %s cannot resume the download", req->uri_shown);
                }
                bool again = cr != CURLE_OK && retryable(&c, cr);
                struct hv_error te = { 0 };
                int r = curl_result(&c, cr, errbuf, again ? &te : e);
                curl_slist_free_all(headers);
                curl_easy_cleanup(curl);
                if (r >= 0 || r == -ERESTART || !again)
                        return r;
                if (attempt >= cf->retries)
                        return hv_fail(e, te.kind, te.err, "%s (after %u tries; [Fetch] Retries=%u)", te.msg, attempt + 1, cf->retries);
                if (c.delivered && !c.etag[0] && !c.last_modified[0]) {
                        log_warning("fetching %s: %s; the server sent neither ETag nor Last-Modified, so the download cannot "
                                    "resume safely: starting over", req->uri_shown, te.msg);
                        return hv_fail(e, HV_E_FETCH_FAILED, ERESTART, "%s", te.msg);
                }
                /* exponential backoff with jitter: 1, 2, 4 … s up to RetryMaxDelaySec, × 0.5–1.5 */
                uint8_t rnd;
                if (getrandom(&rnd, 1, GRND_NONBLOCK) != 1)
                        rnd = 128;
                unsigned base = attempt < 16 ? 1u << attempt : cf->retry_max_delay_sec;
                if (base > cf->retry_max_delay_sec)
                        base = cf->retry_max_delay_sec;
                unsigned delay = (unsigned)((base * (128u + rnd) + 255) / 256);
                log_info("fetching %s: %s; try %u of %u in %u s%s", req->uri_shown, te.msg, attempt + 2, cf->retries + 1, delay,
                         c.delivered ? ", resuming after the bytes already here" : "");
                if (req->retrying)
                        req->retrying(req->userdata, attempt + 1, cf->retries, delay, te.msg);
                if (!backoff_wait(req, delay))
                        return hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
        }
}

