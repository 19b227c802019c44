/* nnkit core: files written in two steps, for saves that must replace
 * several files together (a model's descriptor and its weights): each is
 * written and flushed to a temp file beside its destination first, and
 * only renamed into place once all of them are ready.  Core files only. */
#ifndef NN_WEIGHTS_PRIVATE_H
#define NN_WEIGHTS_PRIVATE_H

#include <nnkit/nnkit.h>

G_BEGIN_DECLS

typedef struct _NnPendingFile NnPendingFile;

/* Returns: (transfer full) (nullable) a flushed temp file holding @len
 * bytes of @data for @path; errors in @domain/@code name @path. */
NnPendingFile *nn_pending_file_new_data (const char *path, const void *data,
                                         gsize len, GQuark domain, int code,
                                         GError **error);
/* Same with a safetensors file, as nn_safetensors_write() writes it. */
NnPendingFile *nn_pending_file_new_safetensors (const char *path,
                                                const char *const *names,
                                                NnTensor *const *tensors,
                                                guint n, GHashTable *metadata,
                                                GError **error);
/* state_dict.c: @m's state_dict as nn_module_save_state_dict() writes it;
 * with @non_persistent followed by the non-persistent buffers, as a
 * model's weights file carries them (a Graph's declared causal mask is
 * zeros until loaded). */
NnPendingFile *nn_module_state_dict_pending (NnModule *m, const char *path,
                                             GHashTable *metadata,
                                             gboolean non_persistent,
                                             GError **error);
/* state_dict.c: load_state_dict of a model's weights file: also loads the
 * non-persistent buffers it holds (not unexpected; absent ones keep their
 * values). */
gboolean nn_module_load_model_weights (NnModule *m, NnSafetensors *st,
                                       const NnLoadOptions *opts,
                                       GError **error);
/* save_protocol.c: creates the temp file for @path (symlinks followed,
 * non-regular destinations refused, stale temps of dead saves removed);
 * @fd_out receives its descriptor. */
NnPendingFile *nn_pending_file_open (const char *path, GQuark domain,
                                     int code, int *fd_out, GError **error);
/* Flushes and closes @fd; @ok says whether writing it went well (errno
 * holds the cause if not).  On failure frees @pf, temp file included. */
NnPendingFile *nn_pending_file_finish (NnPendingFile *pf, int fd,
                                       gboolean ok, GError **error);
/* write() until done; FALSE with errno set on failure. */
gboolean nn_write_all_fd (int fd, const void *buf, gsize len);
/* Checks that a save may write @path (a file name; if it exists, a
 * regular file once symlinks are followed), without writing anything. */
gboolean nn_save_check_output (const char *path, GQuark domain, int code,
                               GError **error);
/* FALSE if the destination cannot be replaced (not a regular file). */
gboolean nn_pending_file_check (NnPendingFile *pf, GError **error);
/* Renames the temp file over the destination. */
gboolean nn_pending_file_commit (NnPendingFile *pf, GError **error);
/* Renames all @n temp files into place, or none: on a failure the files
 * already replaced get their previous content back. */
gboolean nn_pending_file_commit_all (NnPendingFile **files, guint n,
                                     GError **error);
/* Removes the temp file unless committed. */
void nn_pending_file_free (NnPendingFile *pf);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnPendingFile, nn_pending_file_free)

G_END_DECLS

#endif
