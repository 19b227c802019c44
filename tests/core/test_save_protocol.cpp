// core/save_protocol.c and nn_model_save(): a failed save changes nothing
// on disk, outputs must be regular files (symlinks are followed), a
// replaced file keeps its mode, leftovers of killed saves are removed, and
// a descriptor mixed with other weights is named on load.
#include "nn-test.h"

#include <cerrno>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <set>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace nntest;

// Renames onto a path with this suffix fail, as on an immutable file
// (chattr +i).  The test binary's rename() interposes libnnkit's.
static std::string fail_rename_suffix;

extern "C" int
rename (const char *from, const char *to)
{
  if (!fail_rename_suffix.empty () && g_str_has_suffix (to, fail_rename_suffix.c_str ())) {
    errno = EPERM;
    return -1;
  }
  return renameat (AT_FDCWD, from, AT_FDCWD, to);
}

namespace {

const char *kNet = R"({"format": "nnkit", "version": 1, "input_shape": [1, 4],
 "model": {"type": "Sequential", "children": [
    {"name": "fc", "type": "Linear", "config": {"in_features": 4, "out_features": 2}}]}})";

std::string
read_bytes (const std::string &p)
{
  g_autofree char *data = nullptr;
  gsize len = 0;
  if (!g_file_get_contents (p.c_str (), &data, &len, nullptr))
    return "<missing>";
  return std::string (data, len);
}

class SaveProtocol : public ::testing::Test {
 protected:
  void SetUp () override
  {
    dir_ = g_dir_make_tmp ("nnkit-save-XXXXXX", nullptr);
    reg = default_registry ();
    Error e;
    net = Module (nn_descriptor_load_data (reg.get (), kNet, -1, "net", e.out ()));
    ASSERT_NE (net, nullptr) << e.message ();
    nn_module_reset_parameters (net.get (), 1);
  }
  void TearDown () override
  {
    fail_rename_suffix.clear ();
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir_);
    ASSERT_EQ (system (cmd), 0);
    g_free (dir_);
  }
  std::string path (const std::string &n) const { return std::string (dir_) + "/" + n; }
  std::set<std::string> list () const
  {
    std::set<std::string> out;
    GDir *d = g_dir_open (dir_, 0, nullptr);
    for (const char *n; d && (n = g_dir_read_name (d));)
      out.insert (n);
    if (d)
      g_dir_close (d);
    return out;
  }
  char *dir_ = nullptr;
  Registry reg;
  Module net;
};

TEST_F (SaveProtocol, InPlaceSaveWhoseDescriptorCannotBeRenamedChangesNothing)
{
  std::string desc = path ("m.json"), weights = path ("m.safetensors");
  Error e;
  ASSERT_TRUE (nn_model_save (net.get (), desc.c_str (), e.out ())) << e.message ();
  std::string d0 = read_bytes (desc), w0 = read_bytes (weights);
  nn_module_reset_parameters (net.get (), 2);
  fail_rename_suffix = "m.json";
  EXPECT_FALSE (nn_model_save (net.get (), desc.c_str (), e.out ()));
  EXPECT_TRUE (contains (e.message (), desc + ": cannot rename into place")) << e.message ();
  EXPECT_EQ (read_bytes (desc), d0);
  EXPECT_EQ (read_bytes (weights), w0);
  EXPECT_EQ (list (), std::set<std::string> ({ "m.json", "m.safetensors" }));
  // And the pair still loads as it was.
  Module back (nn_model_load (reg.get (), desc.c_str (), nullptr, FALSE, e.out ()));
  EXPECT_NE (back, nullptr) << e.message ();
}

TEST_F (SaveProtocol, NewPairWhoseDescriptorCannotBeRenamedLeavesNoFile)
{
  fail_rename_suffix = "new.json";
  Error e;
  EXPECT_FALSE (nn_model_save (net.get (), path ("new.json").c_str (), e.out ()));
  EXPECT_EQ (list (), std::set<std::string> ());
}

TEST_F (SaveProtocol, EmptyOrDirectoryNamesAreRefused)
{
  g_autofree char *cwd = g_get_current_dir ();
  ASSERT_EQ (g_chdir (dir_), 0);
  for (const char *bad : { "", "sub/", "." }) {
    Error e;
    EXPECT_FALSE (nn_model_save (net.get (), bad, e.out ())) << bad;
    EXPECT_TRUE (contains (e.message (), "not a file name")) << e.message ();
  }
  EXPECT_EQ (g_chdir (cwd), 0);
  EXPECT_EQ (list (), std::set<std::string> ());
}

TEST_F (SaveProtocol, DeviceNodesAndFifosAreNotReplaced)
{
  Error e;
  EXPECT_FALSE (nn_model_save (net.get (), "/dev/null", e.out ()));
  EXPECT_TRUE (contains (e.message (), "/dev/null: cannot replace: it is a character device"))
      << e.message ();
  struct stat st;
  ASSERT_EQ (stat ("/dev/null", &st), 0);
  EXPECT_TRUE (S_ISCHR (st.st_mode));
  EXPECT_FALSE (g_file_test ("/dev/null.safetensors", G_FILE_TEST_EXISTS));

  std::string fifo = path ("f.safetensors");
  ASSERT_EQ (mkfifo (fifo.c_str (), 0644), 0);
  EXPECT_FALSE (nn_model_save (net.get (), fifo.c_str (), e.out ()));
  EXPECT_TRUE (contains (e.message (), "it is a FIFO")) << e.message ();
  EXPECT_EQ (list (), std::set<std::string> ({ "f.safetensors" }));
}

TEST_F (SaveProtocol, SymlinkedOutputsWriteTheirTargets)
{
  ASSERT_EQ (g_mkdir (path ("real").c_str (), 0755), 0);
  ASSERT_EQ (symlink ("real/m.json", path ("m.json").c_str ()), 0);
  ASSERT_EQ (symlink ("real/m.safetensors", path ("m.safetensors").c_str ()), 0);
  Error e;
  ASSERT_TRUE (nn_model_save (net.get (), path ("m.json").c_str (), e.out ())) << e.message ();
  struct stat st;
  ASSERT_EQ (lstat (path ("m.json").c_str (), &st), 0);
  EXPECT_TRUE (S_ISLNK (st.st_mode));
  ASSERT_EQ (lstat (path ("real/m.safetensors").c_str (), &st), 0);
  EXPECT_TRUE (S_ISREG (st.st_mode));
  EXPECT_EQ (read_bytes (path ("m.json")), read_bytes (path ("real/m.json")));
  Module back (nn_model_load (reg.get (), path ("m.json").c_str (), nullptr, FALSE, e.out ()));
  EXPECT_NE (back, nullptr) << e.message ();
  // A link to a device is refused like the device.
  ASSERT_EQ (symlink ("/dev/null", path ("null.json").c_str ()), 0);
  EXPECT_FALSE (nn_model_save (net.get (), path ("null.json").c_str (), e.out ()));
  EXPECT_TRUE (contains (e.message (), "cannot replace /dev/null: it is a character device"))
      << e.message ();
}

TEST_F (SaveProtocol, ReplacedFilesKeepTheirMode)
{
  std::string desc = path ("m.json"), weights = path ("m.safetensors");
  Error e;
  ASSERT_TRUE (nn_model_save (net.get (), desc.c_str (), e.out ())) << e.message ();
  ASSERT_EQ (chmod (desc.c_str (), 0600), 0);
  ASSERT_EQ (chmod (weights.c_str (), 0640), 0);
  ASSERT_TRUE (nn_model_save (net.get (), desc.c_str (), e.out ())) << e.message ();
  struct stat st;
  ASSERT_EQ (stat (desc.c_str (), &st), 0);
  EXPECT_EQ (st.st_mode & 07777, 0600u);
  ASSERT_EQ (stat (weights.c_str (), &st), 0);
  EXPECT_EQ (st.st_mode & 07777, 0640u);
  // A new file gets 0666 less the umask, as any new file.
  mode_t mask = umask (027);
  ASSERT_TRUE (nn_model_save (net.get (), path ("n.safetensors").c_str (), e.out ()));
  umask (mask);
  ASSERT_EQ (stat (path ("n.safetensors").c_str (), &st), 0);
  EXPECT_EQ (st.st_mode & 07777, 0640u);
}

TEST_F (SaveProtocol, LeftoversOfDeadSavesAreRemovedOthersKept)
{
  pid_t child = fork ();
  if (child == 0)
    _exit (0);
  ASSERT_GT (child, 0);
  ASSERT_EQ (waitpid (child, nullptr, 0), child);
  std::string dead = "m.safetensors.nnkit-tmp-" + std::to_string (child) + "-Ab12Cd";
  std::string live = "m.safetensors.nnkit-tmp-" + std::to_string (getppid ()) + "-Ef34Gh";
  ASSERT_TRUE (g_file_set_contents (path (dead).c_str (), "x", 1, nullptr));
  ASSERT_TRUE (g_file_set_contents (path (live).c_str (), "x", 1, nullptr));
  Error e;
  ASSERT_TRUE (nn_model_save (net.get (), path ("m.json").c_str (), e.out ())) << e.message ();
  EXPECT_EQ (list (), std::set<std::string> ({ "m.json", "m.safetensors", live }));
}

TEST_F (SaveProtocol, MixedPairIsNamedOnLoad)
{
  Error e;
  ASSERT_TRUE (nn_model_save (net.get (), path ("a.json").c_str (), e.out ()));
  nn_module_reset_parameters (net.get (), 9);
  ASSERT_TRUE (nn_model_save (net.get (), path ("b.json").c_str (), e.out ()));
  // Old descriptor, new weights: what a kill between the renames leaves.
  ASSERT_EQ (renameat (AT_FDCWD, path ("a.json").c_str (), AT_FDCWD, path ("b.json").c_str ()), 0);
  std::string b = path ("b.json");
  Module m (nn_model_load (reg.get (), b.c_str (), nullptr, FALSE, e.out ()));
  EXPECT_EQ (m, nullptr);
  EXPECT_TRUE (e.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_MISMATCH)) << e.message ();
  EXPECT_TRUE (contains (e.message (), b + ": its weights file " + path ("b.safetensors") +
                         " is not the one saved with it")) << e.message ();
  // Named explicitly, the weights are the caller's choice.
  Module n (nn_model_load (reg.get (), b.c_str (), path ("b.safetensors").c_str (), FALSE,
                           e.out ()));
  EXPECT_NE (n, nullptr) << e.message ();
  // Saving the same weights twice gives the same id, hence the same bytes.
  ASSERT_TRUE (nn_model_save (net.get (), path ("c.json").c_str (), e.out ()));
  EXPECT_EQ (read_bytes (path ("c.safetensors")), read_bytes (path ("b.safetensors")));
}

}  // namespace
