/* nnkit core: the save protocol (docs/WEIGHTS.md, "Saving").  Every file
 * is written to a temp file beside its destination, flushed, then renamed
 * over it.  Outputs are resolved first: symlinks are followed to the file
 * they name, and anything but a regular file is refused.  A replaced file
 * keeps its mode.  Several files (a descriptor and its weights) commit
 * together: a failure puts back every file already replaced. */
#include "nn-weights-private.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Marks our temp files: "<name>.nnkit-tmp-<pid>-XXXXXX".  The pid lets a
 * later save tell a dead writer's leftovers from a live one's. */
#define NN_TMP_INFIX ".nnkit-tmp-"

struct _NnPendingFile {
  char *path;     /* destination as given, for messages */
  char *target;   /* the file actually replaced (symlinks followed) */
  char *tmp;      /* temp file beside it; NULL once committed */
  char *backup;   /* (nullable) a hard link to the replaced file */
  gboolean existed; /* target existed when the temp file was made */
  GQuark domain;
  int code;
};

static char *
resolve_symlinks (const char *path, GQuark domain, int code, GError **error)
{
  char *cur = g_strdup (path);
  for (int hops = 0; hops < 40; hops++) {
    struct stat st;
    if (lstat (cur, &st) != 0 || !S_ISLNK (st.st_mode))
      return cur;
    g_autofree char *link = g_file_read_link (cur, NULL);
    if (link == NULL)
      return cur;
    char *next;
    if (g_path_is_absolute (link)) {
      next = g_strdup (link);
    } else {
      g_autofree char *dir = g_path_get_dirname (cur);
      next = g_build_filename (dir, link, NULL);
    }
    g_free (cur);
    cur = next;
  }
  g_set_error (error, domain, code, "%s: too many levels of symbolic links",
               path);
  g_free (cur);
  return NULL;
}

static const char *
file_kind (mode_t m)
{
  if (S_ISDIR (m)) return "a directory";
  if (S_ISCHR (m)) return "a character device";
  if (S_ISBLK (m)) return "a block device";
  if (S_ISFIFO (m)) return "a FIFO";
  if (S_ISSOCK (m)) return "a socket";
  return "something other than a regular file";
}

/* Removes leftovers of killed saves to @target: temp files and backups
 * whose writer process no longer exists. */
static void
remove_stale_temps (const char *target)
{
  g_autofree char *dir = g_path_get_dirname (target);
  g_autofree char *base = g_path_get_basename (target);
  g_autofree char *prefix = g_strconcat (base, NN_TMP_INFIX, NULL);
  GDir *d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    return;
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL) {
    if (!g_str_has_prefix (name, prefix))
      continue;
    char *end = NULL;
    long pid = strtol (name + strlen (prefix), &end, 10);
    if (pid <= 0 || end == NULL || *end != '-' || pid == (long) getpid ())
      continue;
    if (kill ((pid_t) pid, 0) == 0 || errno != ESRCH)
      continue; /* its writer may still be running */
    g_autofree char *full = g_build_filename (dir, name, NULL);
    (void) unlink (full);
  }
  g_dir_close (d);
}

/* The file a save to @path replaces (transfer full), symlinks followed;
 * @st_out/@existed_out describe it.  Refuses what is not a file name and
 * anything but a regular file. */
static char *
output_target (const char *path, struct stat *st_out, gboolean *existed_out,
               GQuark domain, int code, GError **error)
{
  g_autofree char *base = g_path_get_basename (path);
  if (*path == '\0' || g_str_has_suffix (path, G_DIR_SEPARATOR_S) ||
      strcmp (base, ".") == 0 || strcmp (base, "..") == 0) {
    g_set_error (error, domain, code, "'%s': not a file name", path);
    return NULL;
  }
  g_autofree char *target = resolve_symlinks (path, domain, code, error);
  if (target == NULL)
    return NULL;
  *existed_out = stat (target, st_out) == 0;
  if (*existed_out && !S_ISREG (st_out->st_mode)) {
    if (strcmp (path, target) != 0)
      g_set_error (error, domain, code, "%s: cannot replace %s: it is %s "
                   "(only regular files are written)", path, target,
                   file_kind (st_out->st_mode));
    else
      g_set_error (error, domain, code, "%s: cannot replace: it is %s (only "
                   "regular files are written)", path,
                   file_kind (st_out->st_mode));
    return NULL;
  }
  return g_steal_pointer (&target);
}

gboolean
nn_save_check_output (const char *path, GQuark domain, int code,
                      GError **error)
{
  struct stat st;
  gboolean existed;
  g_autofree char *target = output_target (path, &st, &existed, domain, code,
                                           error);
  return target != NULL;
}

NnPendingFile *
nn_pending_file_open (const char *path, GQuark domain, int code, int *fd_out,
                      GError **error)
{
  struct stat st;
  gboolean existed;
  g_autofree char *target = output_target (path, &st, &existed, domain, code,
                                           error);
  if (target == NULL)
    return NULL;
  remove_stale_temps (target);
  /* Beside the target, so rename() stays on one file system; created as
   * any new file (0666 less the umask), or with the replaced file's mode. */
  char *tmp = g_strdup_printf ("%s" NN_TMP_INFIX "%ld-XXXXXX", target,
                               (long) getpid ());
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, domain, code, "%s: cannot create a temporary file "
                 "beside it: %s", path, g_strerror (e));
    g_free (tmp);
    return NULL;
  }
  if (existed) {
    if (fchmod (fd, st.st_mode & 07777) != 0) {
      int e = errno;
      close (fd);
      unlink (tmp);
      g_set_error (error, domain, code, "%s: cannot keep its mode %o: %s",
                   path, st.st_mode & 07777, g_strerror (e));
      g_free (tmp);
      return NULL;
    }
    if (st.st_uid != geteuid () || st.st_gid != getegid ())
      (void) fchown (fd, st.st_uid, st.st_gid); /* only root can */
  }
  NnPendingFile *pf = g_new0 (NnPendingFile, 1);
  pf->path = g_strdup (path);
  pf->target = g_steal_pointer (&target);
  pf->tmp = tmp;
  pf->existed = existed;
  pf->domain = domain;
  pf->code = code;
  *fd_out = fd;
  return pf;
}

void
nn_pending_file_free (NnPendingFile *pf)
{
  if (pf == NULL)
    return;
  if (pf->tmp)
    unlink (pf->tmp);
  if (pf->backup)
    unlink (pf->backup);
  g_free (pf->tmp);
  g_free (pf->backup);
  g_free (pf->target);
  g_free (pf->path);
  g_free (pf);
}

gboolean
nn_write_all_fd (int fd, const void *buf, gsize len)
{
  const guint8 *p = buf;
  while (len > 0) {
    ssize_t w = write (fd, p, MIN (len, (gsize) G_MAXSSIZE));
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      if (w == 0)
        errno = EIO;
      return FALSE;
    }
    p += w;
    len -= (gsize) w;
  }
  return TRUE;
}

NnPendingFile *
nn_pending_file_finish (NnPendingFile *pf, int fd, gboolean ok,
                        GError **error)
{
  const char *what = "write";
  int e = errno;
  if (ok) {
    what = "flush";
    ok = fsync (fd) == 0;
    e = errno;
  }
  if (close (fd) != 0 && ok) {
    e = errno;
    ok = FALSE;
  }
  if (!ok) {
    g_set_error (error, pf->domain, pf->code, "%s: cannot %s: %s", pf->path,
                 what, g_strerror (e));
    nn_pending_file_free (pf);
    return NULL;
  }
  return pf;
}

NnPendingFile *
nn_pending_file_new_data (const char *path, const void *data, gsize len,
                          GQuark domain, int code, GError **error)
{
  int fd;
  NnPendingFile *pf = nn_pending_file_open (path, domain, code, &fd, error);
  if (pf == NULL)
    return NULL;
  return nn_pending_file_finish (pf, fd, nn_write_all_fd (fd, data, len),
                                 error);
}

gboolean
nn_pending_file_check (NnPendingFile *pf, GError **error)
{
  /* The target may have changed kind since the temp file was made. */
  struct stat st;
  if (stat (pf->target, &st) == 0 && !S_ISREG (st.st_mode)) {
    g_set_error (error, pf->domain, pf->code, "%s: cannot replace: it is %s",
                 pf->path, file_kind (st.st_mode));
    return FALSE;
  }
  return TRUE;
}

static void
sync_dir_of (const char *path)
{
  /* Makes a rename durable; failure here loses nothing. */
  g_autofree char *dir = g_path_get_dirname (path);
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void) fsync (fd);
    close (fd);
  }
}

/* Links the file about to be replaced to a temp name, so that a later
 * failure can put it back. */
static gboolean
keep_backup (NnPendingFile *pf, GError **error)
{
  if (!pf->existed)
    return TRUE;
  for (int attempt = 0; attempt < 100; attempt++) {
    g_autofree char *name = g_strdup_printf ("%s" NN_TMP_INFIX "%ld-bak%06x",
                                             pf->target, (long) getpid (),
                                             g_random_int () & 0xffffff);
    if (link (pf->target, name) == 0) {
      pf->backup = g_steal_pointer (&name);
      return TRUE;
    }
    if (errno == ENOENT) {
      pf->existed = FALSE; /* removed meanwhile: nothing to put back */
      return TRUE;
    }
    if (errno != EEXIST) {
      int e = errno;
      g_set_error (error, pf->domain, pf->code, "%s: cannot keep the current "
                   "file while saving: %s", pf->path, g_strerror (e));
      return FALSE;
    }
  }
  g_set_error (error, pf->domain, pf->code, "%s: cannot keep the current file "
               "while saving: no free temporary name", pf->path);
  return FALSE;
}

/* Puts back what @pf replaced. */
static void
roll_back (NnPendingFile *pf)
{
  if (pf->backup) {
    if (rename (pf->backup, pf->target) == 0)
      g_clear_pointer (&pf->backup, g_free);
  } else if (!pf->existed) {
    (void) unlink (pf->target);
  }
  sync_dir_of (pf->target);
}

static gboolean
commit_one (NnPendingFile *pf, GError **error)
{
  g_return_val_if_fail (pf->tmp != NULL, FALSE);
  if (rename (pf->tmp, pf->target) != 0) {
    int e = errno;
    g_set_error (error, pf->domain, pf->code, "%s: cannot rename into place: "
                 "%s", pf->path, g_strerror (e));
    return FALSE; /* the temp file goes with nn_pending_file_free() */
  }
  g_clear_pointer (&pf->tmp, g_free);
  sync_dir_of (pf->target);
  return TRUE;
}

gboolean
nn_pending_file_commit (NnPendingFile *pf, GError **error)
{
  return nn_pending_file_commit_all (&pf, 1, error);
}

gboolean
nn_pending_file_commit_all (NnPendingFile **files, guint n, GError **error)
{
  for (guint i = 0; i < n; i++)
    if (!nn_pending_file_check (files[i], error))
      return FALSE;
  for (guint i = 0; i < n; i++)
    if (n > 1 && !keep_backup (files[i], error))
      return FALSE; /* backups go with nn_pending_file_free() */
  for (guint i = 0; i < n; i++) {
    if (commit_one (files[i], error))
      continue;
    /* Newest first, so each file gets back its previous content. */
    for (guint j = i; j-- > 0;)
      roll_back (files[j]);
    return FALSE;
  }
  for (guint i = 0; i < n; i++)
    if (files[i]->backup) {
      (void) unlink (files[i]->backup);
      g_clear_pointer (&files[i]->backup, g_free);
    }
  return TRUE;
}
