/* Linked into the test programs of a ThreadSanitizer build only.  GLib's
 * GMutex and GOnce synchronise through futexes and atomics inside libglib,
 * which is not instrumented, so ThreadSanitizer would see every access
 * they protect as a race.  These wrappers call the real functions and tell
 * ThreadSanitizer about the acquire and release they perform.  One
 * suppression, for libzip (uninstrumented too), is at the end. */
#include <glib.h>

#include <dlfcn.h>

void __tsan_acquire (void *addr);
void __tsan_release (void *addr);

typedef void (*MutexFunc) (GMutex *);
typedef gboolean (*TryFunc) (GMutex *);
typedef void (*WaitFunc) (GCond *, GMutex *);
typedef gboolean (*EnterFunc) (volatile void *);
typedef void (*LeaveFunc) (volatile void *, gsize);

#define REAL(name, type) \
  static type real_##name; \
  if (!real_##name) \
    real_##name = (type) dlsym (RTLD_NEXT, #name)

void
g_mutex_lock (GMutex *m)
{
  REAL (g_mutex_lock, MutexFunc);
  real_g_mutex_lock (m);
  __tsan_acquire (m);
}

gboolean
g_mutex_trylock (GMutex *m)
{
  REAL (g_mutex_trylock, TryFunc);
  if (!real_g_mutex_trylock (m))
    return FALSE;
  __tsan_acquire (m);
  return TRUE;
}

void
g_mutex_unlock (GMutex *m)
{
  REAL (g_mutex_unlock, MutexFunc);
  __tsan_release (m);
  real_g_mutex_unlock (m);
}

void
g_cond_wait (GCond *c, GMutex *m)
{
  REAL (g_cond_wait, WaitFunc);
  __tsan_release (m);
  real_g_cond_wait (c, m);
  __tsan_acquire (m);
}

gboolean
(g_once_init_enter) (volatile void *location)
{
  REAL (g_once_init_enter, EnterFunc);
  gboolean first = real_g_once_init_enter (location);
  __tsan_acquire ((void *) location);
  return first;
}

void
(g_once_init_leave) (volatile void *location, gsize result)
{
  REAL (g_once_init_leave, LeaveFunc);
  __tsan_release ((void *) location);
  real_g_once_init_leave (location, result);
}

/* libzip's zip_open() converts DOS times with mktime(), whose tzset frees
 * and copies the TZ string under glibc's own lock, invisible here: two
 * threads opening .pth files (test_pth's racing first reads) would be
 * reported as a race inside libc, called from libzip. */
const char *__tsan_default_suppressions (void);

const char *
__tsan_default_suppressions (void)
{
  return "race:libzip.so\n";
}
