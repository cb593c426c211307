/*
 * run_measured.c -- run one command and print its wall time and peak RSS, for the cold-start
 * numbers of `python -m bench`.
 *
 *   run_measured PROGRAM [ARG...]   ->   "<wall seconds> <peak RSS KiB> <exit status>"
 *
 * Why a C launcher: on Linux a child's ru_maxrss starts from the resident size of the process
 * it was forked from (the old image's high-water mark is carried over at exec), so a child
 * spawned straight from the benchmark's Python process (hundreds of MiB) would report at
 * least that. Forked from this small program, the child's peak is its own. The command's
 * stdout is discarded; its stderr passes through.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PROGRAM [ARG...]\n", argv[0]);
        return 2;
    }
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 2;
    }
    if (child == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 1);
        execvp(argv[1], argv + 1);
        perror(argv[1]);
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    if (wait4(child, &status, 0, &usage) < 0) {
        perror("wait4");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double wall = (double)(end.tv_sec - start.tv_sec) + 1e-9 * (double)(end.tv_nsec - start.tv_nsec);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("%.6f %ld %d\n", wall, usage.ru_maxrss, code);
    return 0;
}
