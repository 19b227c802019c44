// Shared by the engine tests: runs engine-check in a fresh process with
// a modified environment, and reads the CPU the way Linux reports it.
#pragma once

#include <gtest/gtest.h>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <glib.h>

namespace nnengine {

struct CheckRun {
  int status = -1;
  std::map<std::string, std::string> kv;
  std::string err;
};

// Runs engine-check @mode; @set are NAME=VALUE pairs (NAME= for empty),
// @unset names removed from the environment.
inline CheckRun run_check (const std::string &mode,
                      const std::vector<std::string> &set = {},
                      const std::vector<std::string> &unset = {})
{
  CheckRun r;
  const char *exe = g_getenv ("NN_ENGINE_CHECK");
  char **envp = g_get_environ ();
  for (auto &n : unset)
    envp = g_environ_unsetenv (envp, n.c_str ());
  for (auto &kv : set) {
    auto eq = kv.find ('=');
    envp = g_environ_setenv (envp, kv.substr (0, eq).c_str (),
                             kv.substr (eq + 1).c_str (), TRUE);
  }
  const char *argv[] = { exe ? exe : "engine-check", mode.c_str (), nullptr };
  char *out = nullptr, *err = nullptr;
  GError *e = nullptr;
  if (!g_spawn_sync (nullptr, (char **) argv, envp, G_SPAWN_DEFAULT, nullptr,
                     nullptr, &out, &err, &r.status, &e)) {
    ADD_FAILURE () << e->message;
    g_error_free (e);
  }
  g_strfreev (envp);
  std::istringstream in (out ? out : "");
  for (std::string line; std::getline (in, line);) {
    auto eq = line.find ('=');
    if (eq != std::string::npos)
      r.kv[line.substr (0, eq)] = line.substr (eq + 1);
  }
  r.err = err ? err : "";
  g_free (out);
  g_free (err);
  return r;
}

// The first processor's "flags" from /proc/cpuinfo: Linux's own reading
// of cpuid, with features the kernel does not enable left out.
inline std::set<std::string> linux_cpu_flags ()
{
  std::set<std::string> flags;
  char *text = nullptr;
  if (!g_file_get_contents ("/proc/cpuinfo", &text, nullptr, nullptr))
    return flags;
  std::istringstream in (text);
  g_free (text);
  for (std::string line; std::getline (in, line);)
    if (line.rfind ("flags", 0) == 0) {
      std::istringstream words (line.substr (line.find (':') + 1));
      for (std::string w; words >> w;)
        flags.insert (w);
      break;
    }
  return flags;
}

inline std::string linux_cpu_field (const std::string &key)
{
  char *text = nullptr;
  std::string val;
  if (!g_file_get_contents ("/proc/cpuinfo", &text, nullptr, nullptr))
    return val;
  std::istringstream in (text);
  g_free (text);
  for (std::string line; std::getline (in, line);)
    if (line.rfind (key, 0) == 0 && line.find (':') != std::string::npos
        && line.substr (0, line.find (':')).find_last_not_of (" \t") + 1 == key.size ()) {
      val = line.substr (line.find (':') + 1);
      val.erase (0, val.find_first_not_of (" \t"));
      break;
    }
  return val;
}

} // namespace nnengine
