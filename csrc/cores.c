/*
 * cores.c: how many of the machine's cores a team can have right now.
 *
 * A team that meets at a barrier every step (or splits a call's rows statically) runs at the
 * pace of its slowest thread. When another library's pool keeps spinning after its call
 * (numpy's OpenBLAS does for about 0.1 s, onnxruntime's too) or another process computes, the
 * runnable threads outnumber the cores, the scheduler parks one of the team's for a whole time
 * slice (milliseconds), and the team waits. Measured on 2 cores with one other busy process:
 * S2 inference took 2.6 ms with two threads, 1.2 ms with one (0.70 ms with two alone).
 *
 * So before a team opens, fl_team_for() counts the threads that are running or waiting to run
 * on the machine (the kernel's count in /proc/loadavg), minus the caller and minus the team's
 * own workers still spinning from the previous call (OpenMP keeps them spinning for a while;
 * their ids are recorded as they join a team), and gives the team at most the cores the others
 * leave free, never less than one thread; when they leave none, a long call that needs no
 * barrier between steps (long_call) keeps its team: over many time slices the team's fair
 * share of the busy cores beats one thread's (make_plan, fl_seq.h). Of three successive counts
 * the smallest is used (a pool's spin lasts tens of milliseconds, a system task's moment rarely
 * spans three counts), and a count is kept for FL_BUSY_KEEP_NS (half that again for each
 * worker past the first: each is a file read), so a stream of short calls on a small machine
 * reads it once a millisecond. Only the speed depends on it: the kernels split outputs, never
 * sums, so every team size gives the same bits.
 *
 * The count means something only when this process may run on every online CPU (a CPU set
 * restricted by affinity or a container's cpuset would mix in other CPUs' threads) and when
 * /proc/loadavg exists (Linux): elsewhere fl_core_check() is 0 and teams are as asked. A call
 * whose fl_exec.fixed_team is set (or that forces a split) skips the check.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastlstm.h"

#ifdef __linux__
#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define FL_CORES_LINUX 1
#endif

#define FL_BUSY_KEEP_NS 1000000LL /* a count is reused for 1 ms (more with many workers) */
#define FL_MAX_WORKERS 64         /* team members whose ids are kept (member 0 is the caller) */

enum { CHECK_UNKNOWN = 0, CHECK_STARTING = 1, CHECK_READY = 2, CHECK_UNAVAILABLE = 3 };

static int check_state;          /* CHECK_*: set up once, on first use */
static int online_cpus;          /* the CPUs the count covers (== this process's CPUs) */
static int loadavg_fd = -1;
static int worker_tid[FL_MAX_WORKERS];
static int workers_known; /* a team member has recorded its id */
static long long kept_at_ns = -1; /* when kept_busy was counted ... */
static long long kept_for_ns = FL_BUSY_KEEP_NS; /* ... and for how long it is kept */
static int kept_busy;
static int last_count[2] = {-1, -1}; /* the previous two counts, the last first */

#define LOAD(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n(p, v, __ATOMIC_RELEASE)

#ifdef FL_CORES_LINUX
static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Open /proc/loadavg and check that the count it gives covers exactly this process's CPUs. */
static int set_up(void)
{
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (online < 1 || sched_getaffinity(0, sizeof set, &set) != 0) return CHECK_UNAVAILABLE;
    if (CPU_COUNT(&set) != online) return CHECK_UNAVAILABLE;
    const int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CHECK_UNAVAILABLE;
    online_cpus = (int)online;
    loadavg_fd = fd;
    return CHECK_READY;
}

static int ready(void)
{
    int s = LOAD(&check_state);
    if (s == CHECK_UNKNOWN) {
        int expected = CHECK_UNKNOWN;
        if (__atomic_compare_exchange_n(&check_state, &expected, CHECK_STARTING, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            s = set_up();
            STORE(&check_state, s);
        } else {
            s = expected; /* another thread is setting up: this call goes without */
        }
    }
    return s == CHECK_READY;
}

/* "R" in /proc/self/task/<tid>/stat: the thread is running or runnable. */
static int thread_running(int tid)
{
    char path[64], buf[160];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0; /* gone */
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* after the name, which may hold spaces */
    if (!p) return 0;
    while (*++p == ' ') {
    }
    return *p == 'R';
}

/* Runnable threads on the machine besides the caller and this library's team workers, or -1.
 * The workers are read first: one that stops spinning in between is then left out of both
 * (or of the machine's count only, which errs towards a free core), never counted as busy. */
static int count_busy(int *reads)
{
    int own = 0;
    *reads = 1;
    for (int w = 1; w < FL_MAX_WORKERS; w++) {
        const int tid = LOAD(&worker_tid[w]);
        if (tid <= 0) continue;
        own += thread_running(tid);
        ++*reads;
    }
    char buf[128];
    const ssize_t n = pread(loadavg_fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    /* "0.12 0.03 0.10 2/345 6789": the fourth field is runnable/all */
    const char *p = buf;
    for (int field = 0; field < 3; field++) {
        p = strchr(p, ' ');
        if (!p) return -1;
        p++;
    }
    char *end;
    const long running = strtol(p, &end, 10);
    if (end == p || *end != '/') return -1;
    const long busy = running - 1 - own; /* the caller, its workers */
    return busy < 0 ? 0 : (int)busy;
}
#endif

void fl_note_team_member(int member)
{
#ifdef FL_CORES_LINUX
    static __thread int my_tid;
    if (member < 1 || member >= FL_MAX_WORKERS) return;
    if (!my_tid) my_tid = (int)syscall(SYS_gettid);
    if (LOAD(&worker_tid[member]) != my_tid) STORE(&worker_tid[member], my_tid);
    if (!LOAD(&workers_known)) STORE(&workers_known, 1);
#else
    (void)member;
#endif
}

int fl_busy_threads(void)
{
#ifdef FL_CORES_LINUX
    if (!ready()) return -1;
    const long long t = now_ns(), at = LOAD(&kept_at_ns);
    if (at >= 0 && t - at < LOAD(&kept_for_ns) && t >= at) return LOAD(&kept_busy);
    int reads;
    const int now = count_busy(&reads);
    if (now < 0) return -1;
    /* The smallest of this count and the two before: a pool that spins after its call stays
     * runnable for tens of milliseconds and shows in all three, a task that runs for a moment
     * (a kernel thread, a daemon's tick) rarely does. */
    const int last = __atomic_exchange_n(&last_count[0], now, __ATOMIC_ACQ_REL);
    const int before = __atomic_exchange_n(&last_count[1], last, __ATOMIC_ACQ_REL);
    int busy = now;
    if (last >= 0 && last < busy) busy = last;
    if (before >= 0 && before < busy) busy = before;
    STORE(&kept_busy, busy);
    /* a count costs a file read per team worker (a few us each): with many workers it is
     * kept longer, so that counting stays under about 1 % of the time */
    STORE(&kept_for_ns, FL_BUSY_KEEP_NS * (1 + (reads - 1) / 2));
    STORE(&kept_at_ns, t);
    return busy;
#else
    return -1;
#endif
}

int fl_team_for(int want, int long_call)
{
    /* Until a team has run, its workers' ids are unknown, and OpenMP's pool spinning after
     * someone else's region (torch's share the pool) would count as busy and keep every team
     * cut, so nothing would ever record them: the first team runs as asked. */
    if (want <= 1 || !LOAD(&workers_known)) return want;
    const int busy = fl_busy_threads();
    if (busy < 0) return want;
    const int free_cores = online_cpus - busy;
    if (free_cores < 1) return long_call ? want : 1;
    return free_cores < want ? free_cores : want;
}

int fl_core_check(void)
{
#ifdef FL_CORES_LINUX
    return ready();
#else
    return 0;
#endif
}

int fl_online_cpus(void)
{
#ifdef FL_CORES_LINUX
    return ready() ? online_cpus : -1;
#else
    return -1;
#endif
}
