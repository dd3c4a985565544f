// Starts the bigbatch binary as a child process whose id the test holds, so that it can be
// signalled or killed at a chosen moment; output goes to a log file.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace bb::test {

// Splits on spaces: the tests' arguments hold no quoted spaces.
inline std::vector<std::string> split_args(const std::string& args) {
  std::istringstream in(args);
  std::vector<std::string> v;
  for (std::string w; in >> w;) v.push_back(w);
  return v;
}

inline pid_t spawn_cli(const std::string& args, const std::string& log) {
  std::vector<std::string> words = split_args(args);
  words.insert(words.begin(), BIGBATCH_BINARY);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

struct ChildExit {
  int code = -1;    // exit status when it exited
  int signal = 0;   // the signal that ended it, when one did
};

inline ChildExit wait_child(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  ChildExit e;
  if (WIFEXITED(status)) e.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
  return e;
}

// Waits until the child has exited (true) or `seconds` have passed (false, still running).
inline bool exited_within(pid_t pid, double seconds, ChildExit* e) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  do {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      if (WIFEXITED(status)) e->code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) e->signal = WTERMSIG(status);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  } while (std::chrono::steady_clock::now() < end);
  return false;
}

}  // namespace bb::test
