// The C runner of the shared conformance scenarios (testdata/scenarios/README.md): every
// scenario through the library, embedded and against a real server it starts.
//   scenarios DIR SERVER_BINARY
// Prints each failure as "scenario FILE step N (KIND NAME): what", then "N passed, N failed".
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hms_lifecycle.h"
#include "server.h"


static const char *code_names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                   "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                   "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                                   "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

static const char *code_name(int32_t c) { return c >= 0 && c <= 16 ? code_names[c] : "?"; }

// ---- matching (README: "Matching") ----

static char why[2048];

static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return 0;
}

// scalar writes a scalar's text: strings as they are, numbers in decimal, bools, null.
static void scalar(const cJSON *v, char *buf, size_t n) {
  if (cJSON_IsString(v)) snprintf(buf, n, "%s", v->valuestring);
  else if (cJSON_IsNumber(v)) snprintf(buf, n, "%.0f", v->valuedouble);
  else if (cJSON_IsTrue(v)) snprintf(buf, n, "true");
  else if (cJSON_IsFalse(v)) snprintf(buf, n, "false");
  else snprintf(buf, n, "null");
}

static int is_zero(const cJSON *v) {
  if (cJSON_IsFalse(v) || cJSON_IsNull(v)) return 1;
  if (cJSON_IsNumber(v)) return v->valuedouble == 0;
  if (cJSON_IsString(v)) {
    size_t l = strlen(v->valuestring);
    return l == 0 || strcmp(v->valuestring, "0") == 0 ||
           (l >= 12 && strcmp(v->valuestring + l - 12, "_UNSPECIFIED") == 0);
  }
  if (cJSON_IsArray(v)) return cJSON_GetArraySize(v) == 0;
  if (cJSON_IsObject(v)) {
    const cJSON *len = cJSON_GetObjectItemCaseSensitive(v, "$len");
    if (len && cJSON_GetArraySize(v) == 1) return len->valuedouble == 0;
    return cJSON_GetArraySize(v) == 0;
  }
  return 0;
}

static int match(const cJSON *want, const cJSON *got, const char *path) {
  char p[512];
  if (cJSON_IsObject(want)) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(want, "$contains");
    if (c && cJSON_GetArraySize(want) == 1) {
      if (!cJSON_IsString(got) || !strstr(got->valuestring, c->valuestring))
        return fail("%s: %s does not contain \"%s\"", path, cJSON_IsString(got) ? got->valuestring : "(not a string)", c->valuestring);
      return 1;
    }
    const cJSON *len = cJSON_GetObjectItemCaseSensitive(want, "$len");
    if (len && cJSON_GetArraySize(want) == 1) {
      int n = cJSON_IsArray(got) ? cJSON_GetArraySize(got) : 0;
      if (n != (int)len->valuedouble) return fail("%s: %d elements, want %d", path, n, (int)len->valuedouble);
      return 1;
    }
    const cJSON *w;
    cJSON_ArrayForEach(w, want) {
      snprintf(p, sizeof p, "%s.%s", path, w->string);
      const cJSON *g = cJSON_IsObject(got) ? cJSON_GetObjectItemCaseSensitive(got, w->string) : NULL;
      if (!g) {
        if (is_zero(w)) continue;
        return fail("%s: absent", p);
      }
      if (!match(w, g, p)) return 0;
    }
    return 1;
  }
  if (cJSON_IsArray(want)) {
    int n = cJSON_GetArraySize(want);
    if (!cJSON_IsArray(got) || cJSON_GetArraySize(got) != n)
      return fail("%s: %d elements, want %d", path, cJSON_IsArray(got) ? cJSON_GetArraySize(got) : -1, n);
    for (int i = 0; i < n; i++) {
      snprintf(p, sizeof p, "%s[%d]", path, i);
      if (!match(cJSON_GetArrayItem(want, i), cJSON_GetArrayItem(got, i), p)) return 0;
    }
    return 1;
  }
  char a[512], b[512];
  scalar(want, a, sizeof a);
  scalar(got, b, sizeof b);
  if (strcmp(a, b) != 0) return fail("%s: %s, want %s", path, b, a);
  return 1;
}

// ---- a run of one scenario ----

#define MAXNAMES 32

struct worker {
  char name[64];
  uint64_t h;
  char answer[16], reason[256];
  pthread_t thread;
  pthread_mutex_t mu;
  int count;
};

struct run {
  uint64_t h;
  char where[512];
  const char *names[MAXNAMES];
  cJSON *saved[MAXNAMES];
  int nsaved;
  char streams[MAXNAMES][64];
  uint64_t stream_h[MAXNAMES];
  int nstreams;
  struct worker *workers[MAXNAMES];
  int nworkers;
};

static cJSON *lookup(cJSON *v, const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *save = NULL, *part = strtok_r(buf, ".", &save); part && v; part = strtok_r(NULL, ".", &save)) {
    if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, atoi(part));
    else v = cJSON_GetObjectItemCaseSensitive(v, part);
  }
  return v;
}

// substitute replaces "${name}" strings in v (a copy the caller owns) by saved values.
static int substitute(struct run *r, cJSON *v) {
  cJSON *c;
  cJSON_ArrayForEach(c, v) {
    if (cJSON_IsString(c) && strncmp(c->valuestring, "${", 2) == 0) {
      size_t l = strlen(c->valuestring);
      char name[128];
      snprintf(name, sizeof name, "%.*s", (int)(l - 3), c->valuestring + 2);
      int found = 0;
      for (int i = 0; i < r->nsaved; i++)
        if (strcmp(r->names[i], name) == 0) {
          cJSON *dup = cJSON_Duplicate(r->saved[i], 1);
          free(dup->string);  // the key it was saved under: take the replaced item's
          dup->string = c->string ? strdup(c->string) : NULL;
          cJSON_ReplaceItemViaPointer(v, c, dup);
          found = 1;
          break;
        }
      if (!found) return fail("nothing saved as %s", name);
      return substitute(r, v);  // the list changed under the iteration: start again
    }
    if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && !substitute(r, c)) return 0;
  }
  return 1;
}

static cJSON *value(struct run *r, const cJSON *raw) {
  cJSON *v = raw ? cJSON_Duplicate(raw, 1) : cJSON_CreateObject();
  if ((cJSON_IsObject(v) || cJSON_IsArray(v)) && !substitute(r, v)) {
    cJSON_Delete(v);
    return NULL;
  }
  return v;
}

static const char *service(const char *s) {
  return s && strcmp(s, "plugins") == 0 ? "hms.plugin.lifecycle.v1.PluginLifecycleManager/" : "hms.agent.lifecycle.v1.LifecycleManager/";
}

static int check_error(int32_t code, hms_status *st, const cJSON *step) {
  const cJSON *want = cJSON_GetObjectItemCaseSensitive(step, "expectError");
  const cJSON *contains = cJSON_GetObjectItemCaseSensitive(step, "expectErrorContains");
  int ok = 1;
  if (code == HMS_OK) ok = fail("succeeded, want %s", want->valuestring);
  else if (strcmp(code_name(code), want->valuestring) != 0) ok = fail("error %s (%s), want %s", code_name(code), st->message, want->valuestring);
  else if (contains && !strstr(st->message, contains->valuestring)) ok = fail("error message \"%s\" does not contain \"%s\"", st->message, contains->valuestring);
  hms_free(st->message);
  st->message = NULL;
  return ok;
}

static uint64_t *stream_named(struct run *r, const char *name) {
  for (int i = 0; i < r->nstreams; i++)
    if (strcmp(r->streams[i], name) == 0) return &r->stream_h[i];
  fail("no stream %s", name);
  return NULL;
}

static struct worker *worker_named(struct run *r, const char *name) {
  for (int i = 0; i < r->nworkers; i++)
    if (r->workers[i] && strcmp(r->workers[i]->name, name) == 0) return r->workers[i];
  fail("no hook worker %s", name);
  return NULL;
}

// items splits a batch into parsed JSON items appended to out.
static void items(const uint8_t *b, size_t n, cJSON *out) {
  for (size_t off = 0; off + 4 <= n;) {
    uint32_t l = (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 | (uint32_t)b[off + 2] << 16 | (uint32_t)b[off + 3] << 24;
    cJSON_AddItemToArray(out, cJSON_ParseWithLength((const char *)b + off + 4, l));
    off += 4 + l;
  }
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void *serve(void *arg) {
  struct worker *w = arg;
  for (;;) {
    uint8_t *b;
    size_t n;
    hms_status st = {0};
    if (hms_next(w->h, -1, 0, &b, &n, &st) != HMS_OK) {
      hms_free(st.message);
      return NULL;
    }
    cJSON *list = cJSON_CreateArray();
    items(b, n, list);
    hms_free(b);
    cJSON *inv;
    cJSON_ArrayForEach(inv, list) {
      pthread_mutex_lock(&w->mu);
      w->count++;
      pthread_mutex_unlock(&w->mu);
      if (strcmp(w->answer, "ignore") == 0) continue;
      cJSON *reply = cJSON_CreateObject();
      cJSON_AddStringToObject(reply, "invocationId", cJSON_GetObjectItemCaseSensitive(inv, "invocationId")->valuestring);
      if (strcmp(w->answer, "veto") == 0) {
        cJSON_AddBoolToObject(reply, "veto", 1);
        cJSON_AddStringToObject(reply, "reason", w->reason);
      } else if (strcmp(w->answer, "error") == 0) {
        cJSON_AddStringToObject(reply, "error", w->reason);
      }
      char *s = cJSON_PrintUnformatted(reply);
      hms_hook_complete(w->h, (const uint8_t *)s, strlen(s), NULL);
      free(s);
      cJSON_Delete(reply);
    }
    cJSON_Delete(list);
  }
}

static void close_worker(struct worker *w) {
  hms_stream_close(w->h, NULL);
  pthread_join(w->thread, NULL);
  pthread_mutex_destroy(&w->mu);
  free(w);
}

static const char *str(const cJSON *step, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(step, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int step_call(struct run *r, const cJSON *step) {
  char method[256];
  snprintf(method, sizeof method, "%s%s", service(str(step, "service")), str(step, "call"));
  cJSON *req = value(r, cJSON_GetObjectItemCaseSensitive(step, "request"));
  if (!req) return 0;
  char *body = cJSON_PrintUnformatted(req);
  cJSON_Delete(req);
  uint8_t *resp = NULL;
  size_t n = 0;
  hms_status st = {0};
  int32_t code = hms_call(r->h, method, HMS_FORMAT_JSON, (const uint8_t *)body, strlen(body), &resp, &n, &st);
  free(body);
  if (cJSON_GetObjectItemCaseSensitive(step, "expectError")) {
    hms_free(resp);
    return check_error(code, &st, step);
  }
  if (code != HMS_OK) {
    fail("error %s: %s", code_name(code), st.message);
    hms_free(st.message);
    return 0;
  }
  cJSON *got = n ? cJSON_ParseWithLength((const char *)resp, n) : cJSON_CreateObject();
  int ok = 1;
  const cJSON *expect = cJSON_GetObjectItemCaseSensitive(step, "expect");
  if (expect) {
    cJSON *want = value(r, expect);
    ok = want && match(want, got, "");
    cJSON_Delete(want);
    if (!ok) {
      size_t l = strlen(why);
      snprintf(why + l, sizeof why - l, "\nresponse: %.*s", (int)(n > 1200 ? 1200 : n), (const char *)resp);
    }
  }
  const cJSON *save = cJSON_GetObjectItemCaseSensitive(step, "save"), *s;
  cJSON_ArrayForEach(s, save) {
    cJSON *v = lookup(got, s->valuestring);
    if (!v) {
      ok = fail("save %s: no %s in the response", s->string, s->valuestring);
      break;
    }
    r->names[r->nsaved] = s->string;
    r->saved[r->nsaved++] = cJSON_Duplicate(v, 1);
  }
  cJSON_Delete(got);
  hms_free(resp);
  return ok;
}

static int step_next(struct run *r, const cJSON *step) {
  uint64_t *s = stream_named(r, str(step, "next"));
  if (!s) return 0;
  cJSON *want = value(r, cJSON_GetObjectItemCaseSensitive(step, "expect"));
  if (!want) return 0;
  int n = cJSON_GetArraySize(want), ok = 1;
  cJSON *got = cJSON_CreateArray();
  double deadline = now() + 10;
  while (cJSON_GetArraySize(got) < n && now() < deadline) {
    uint8_t *b;
    size_t bn;
    hms_status st = {0};
    int32_t code = hms_next(*s, (int32_t)((deadline - now()) * 1000) + 1, n - cJSON_GetArraySize(got), &b, &bn, &st);
    if (code != HMS_OK) {
      ok = fail("stream ended after %d of %d items: %s %s", cJSON_GetArraySize(got), n, code_name(code), st.message);
      hms_free(st.message);
      break;
    }
    items(b, bn, got);
    hms_free(b);
  }
  if (ok && cJSON_GetArraySize(got) < n) ok = fail("%d of %d items within 10s", cJSON_GetArraySize(got), n);
  for (int i = 0; ok && i < n; i++) {
    char p[32];
    snprintf(p, sizeof p, "[%d]", i);
    ok = match(cJSON_GetArrayItem(want, i), cJSON_GetArrayItem(got, i), p);
  }
  const cJSON *quiet = cJSON_GetObjectItemCaseSensitive(step, "thenNothingFor");
  if (ok && quiet) {
    uint8_t *b;
    size_t bn = 0;
    if (hms_next(*s, (int32_t)quiet->valuedouble, 0, &b, &bn, NULL) == HMS_OK && bn > 0) {
      ok = fail("unexpected item: %.*s", (int)(bn > 400 ? 400 : bn - 4), (const char *)b + 4);
      hms_free(b);
    }
  }
  cJSON_Delete(want);
  cJSON_Delete(got);
  return ok;
}

static int run_step(struct run *r, const cJSON *step) {
  const char *name;
  if ((name = str(step, "call"))) return step_call(r, step);
  if ((name = str(step, "watch"))) {
    const char *m = str(step, "method");
    char method[256];
    snprintf(method, sizeof method, "%s%s", service(strcmp(m, "WatchPluginEvents") == 0 ? "plugins" : "agents"), m);
    cJSON *req = value(r, cJSON_GetObjectItemCaseSensitive(step, "request"));
    if (!req) return 0;
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    uint64_t s = 0;
    hms_status st = {0};
    int32_t code = hms_watch(r->h, method, HMS_FORMAT_JSON, (const uint8_t *)body, strlen(body), &s, &st);
    free(body);
    if (cJSON_GetObjectItemCaseSensitive(step, "expectError")) return check_error(code, &st, step);
    if (code != HMS_OK) {
      fail("%s: %s", code_name(code), st.message);
      hms_free(st.message);
      return 0;
    }
    snprintf(r->streams[r->nstreams], 64, "%s", name);
    r->stream_h[r->nstreams++] = s;
    return 1;
  }
  if ((name = str(step, "next"))) return step_next(r, step);
  if ((name = str(step, "end"))) {
    uint64_t *s = stream_named(r, name);
    if (!s) return 0;
    double deadline = now() + 10;
    while (now() < deadline) {
      uint8_t *b;
      size_t bn;
      hms_status st = {0};
      int32_t code = hms_next(*s, 1000, 0, &b, &bn, &st);
      if (code != HMS_OK) return check_error(code, &st, step);
      hms_free(b);
    }
    return fail("the stream did not end within 10s");
  }
  if ((name = str(step, "closeWatch"))) {
    uint64_t *s = stream_named(r, name);
    if (!s) return 0;
    hms_stream_close(*s, NULL);
    *s = 0;
    return 1;
  }
  if ((name = str(step, "hooks"))) {
    struct worker *w = calloc(1, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    snprintf(w->answer, sizeof w->answer, "%s", str(step, "answer"));
    snprintf(w->reason, sizeof w->reason, "%s", str(step, "reason") ? str(step, "reason") : "");
    pthread_mutex_init(&w->mu, NULL);
    cJSON *hello = cJSON_CreateObject();
    cJSON_AddItemToObject(hello, "callbacks", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(step, "callbacks"), 1));
    char *body = cJSON_PrintUnformatted(hello);
    cJSON_Delete(hello);
    hms_status st = {0};
    int32_t code = hms_hooks_open(r->h, HMS_FORMAT_JSON, (const uint8_t *)body, strlen(body), &w->h, &st);
    free(body);
    if (code != HMS_OK) {
      fail("%s: %s", code_name(code), st.message);
      hms_free(st.message);
      free(w);
      return 0;
    }
    pthread_create(&w->thread, NULL, serve, w);
    r->workers[r->nworkers++] = w;
    return 1;
  }
  if ((name = str(step, "invocations"))) {
    struct worker *w = worker_named(r, name);
    if (!w) return 0;
    pthread_mutex_lock(&w->mu);
    int n = w->count;
    pthread_mutex_unlock(&w->mu);
    int want = (int)cJSON_GetObjectItemCaseSensitive(step, "expect")->valuedouble;
    return n == want ? 1 : fail("%d invocations, want %d", n, want);
  }
  if ((name = str(step, "closeHooks"))) {
    for (int i = 0; i < r->nworkers; i++)
      if (r->workers[i] && strcmp(r->workers[i]->name, name) == 0) {
        close_worker(r->workers[i]);
        r->workers[i] = NULL;
        return 1;
      }
    return fail("no hook worker %s", name);
  }
  return fail("a step needs one of call, watch, next, end, closeWatch, hooks, invocations, closeHooks");
}

static int run_scenario(uint64_t h, const char *file, const cJSON *sc, const char *mode) {
  struct run r = {.h = h};
  int ok = 1, i = 0;
  const cJSON *step;
  cJSON_ArrayForEach(step, cJSON_GetObjectItemCaseSensitive(sc, "steps")) {
    i++;
    const char *kinds[] = {"call", "watch", "next", "end", "closeWatch", "hooks", "invocations", "closeHooks"};
    const char *kind = "?", *name = "";
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
      if (str(step, kinds[k])) {
        kind = kinds[k];
        name = str(step, kinds[k]);
        break;
      }
    if (!run_step(&r, step)) {
      fprintf(stderr, "FAIL (%s) scenario %s step %d (%s %s): %s\n", mode, file, i, kind, name, why);
      ok = 0;
      break;
    }
  }
  for (int k = 0; k < r.nstreams; k++)
    if (r.stream_h[k]) hms_stream_close(r.stream_h[k], NULL);
  for (int k = 0; k < r.nworkers; k++)
    if (r.workers[k]) close_worker(r.workers[k]);
  for (int k = 0; k < r.nsaved; k++) cJSON_Delete(r.saved[k]);
  return ok;
}


int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: scenarios DIR SERVER_BINARY\n");
    return 2;
  }
  const char *dir = argv[1], *bin = argv[2];
  DIR *d = opendir(dir);
  if (!d) {
    perror(dir);
    return 2;
  }
  int passed = 0, failed = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0) continue;
    char path[PATH_MAX], repo[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "r");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *text = malloc(size + 1);
    text[fread(text, 1, size, f)] = 0;
    fclose(f);
    cJSON *sc = cJSON_Parse(text);
    free(text);
    if (!sc) {
      fprintf(stderr, "FAIL %s: not JSON\n", path);
      failed++;
      continue;
    }
    const char *rel = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sc, "config"), "plugin_repo"));
    if (rel) {
      char joined[PATH_MAX];
      snprintf(joined, sizeof joined, "%s/%s", dir, rel);
      if (!realpath(joined, repo)) rel = NULL;
    }
    // Embedded.
    char config[PATH_MAX + 32] = "{}";
    if (rel) snprintf(config, sizeof config, "{\"plugin_repo\":\"%s\"}", repo);
    uint64_t h = 0;
    hms_status st = {0};
    if (hms_open((const uint8_t *)config, strlen(config), &h, &st) != HMS_OK) {
      fprintf(stderr, "FAIL (embedded) %s: open: %s\n", e->d_name, st.message);
      hms_free(st.message);
      failed++;
    } else {
      run_scenario(h, e->d_name, sc, "embedded") ? passed++ : failed++;
      hms_close(h, NULL);
    }
    // Remote.
    char url[256];
    pid_t pid = start_server(bin, rel ? repo : NULL, url, sizeof url);
    if (pid < 0) {
      fprintf(stderr, "FAIL (remote) %s: the server did not start\n", e->d_name);
      failed++;
    } else {
      snprintf(config, sizeof config, "{\"endpoint\":\"%s\"}", url);
      if (hms_open((const uint8_t *)config, strlen(config), &h, &st) != HMS_OK) {
        fprintf(stderr, "FAIL (remote) %s: open: %s\n", e->d_name, st.message);
        hms_free(st.message);
        failed++;
      } else {
        run_scenario(h, e->d_name, sc, "remote") ? passed++ : failed++;
        hms_close(h, NULL);
      }
      kill(pid, SIGTERM);
      waitpid(pid, NULL, 0);
    }
    cJSON_Delete(sc);
  }
  closedir(d);
  if (hms_handle_count() != 0) {
    fprintf(stderr, "FAIL: %lld handles left open\n", (long long)hms_handle_count());
    failed++;
  }
  printf("scenarios: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
