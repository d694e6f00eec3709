// start_server starts `SERVER serve --store memory --listen 127.0.0.1:0 [--plugin-repo REPO]`
// (stderr to /dev/null) and returns its pid, or -1; *url gets the address it prints on
// its first line. Shared by the scenario runner and the benchmark.
#ifndef HMS_TEST_SERVER_H
#define HMS_TEST_SERVER_H

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static pid_t start_server(const char *bin, const char *repo, char *url, size_t n) {
  int out[2];
  if (pipe(out) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 01, 0);
  char *argv[] = {(char *)bin, "serve", "--store", "memory", "--listen", "127.0.0.1:0",
                  repo ? "--plugin-repo" : NULL, (char *)repo, NULL};
  pid_t pid;
  int err = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  if (err != 0) {
    close(out[0]);
    return -1;
  }
  FILE *f = fdopen(out[0], "r");
  char line[256] = {0};
  char *got = fgets(line, sizeof line, f);
  fclose(f);
  char *u = got ? strstr(line, "http://") : NULL;
  if (!u) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
  }
  u[strcspn(u, "\r\n")] = 0;
  snprintf(url, n, "%s", u);
  return pid;
}

#endif
