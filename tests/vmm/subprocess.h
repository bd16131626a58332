// tests/vmm/subprocess.h — runs build/labyrinth as a child process for integration tests.
//
//   Child c = Child::spawn({LABYRINTH_BINARY, "run", "--config", path});
//   c.wait_for_output("spin\n", 10s);   // polls the child's captured stdout
//   ::kill(c.pid(), SIGINT);
//   Child::Result r = c.wait(5s);       // status, stdout, stderr, seconds
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace labyrinth::testing {

class Child {
 public:
  struct Result {
    int status = -1;  // exit status, or 128 + signal number if killed
    bool timed_out = false;
    std::string out, err;
    double seconds = 0;  // spawn -> exit
  };

  static Child spawn(const std::vector<std::string>& args) {
    Child c;
    static int counter = 0;
    const auto base =
        std::filesystem::temp_directory_path() /
        ("labyrinth-child-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    c.out_path_ = base.string() + ".out";
    c.err_path_ = base.string() + ".err";
    c.start_ = std::chrono::steady_clock::now();
    c.pid_ = ::fork();
    if (c.pid_ == 0) {
      const int in = ::open("/dev/null", O_RDONLY);
      const int out = ::open(c.out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = ::open(c.err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return c;
  }

  pid_t pid() const { return pid_; }
  std::string out() const { return slurp(out_path_); }
  std::string err() const { return slurp(err_path_); }

  bool wait_for_output(const std::string& needle, std::chrono::milliseconds limit) const {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (out().find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  }

  Result wait(std::chrono::milliseconds limit) {
    Result r;
    const auto end = std::chrono::steady_clock::now() + limit;
    int wstatus = 0;
    for (;;) {
      const pid_t done = ::waitpid(pid_, &wstatus, WNOHANG);
      if (done == pid_) break;
      if (std::chrono::steady_clock::now() > end) {
        r.timed_out = true;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &wstatus, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    r.out = out();
    r.err = err();
    std::filesystem::remove(out_path_);
    std::filesystem::remove(err_path_);
    return r;
  }

  static Result run(const std::vector<std::string>& args,
                    std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    return spawn(args).wait(limit);
  }

 private:
  static std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  pid_t pid_ = -1;
  std::string out_path_, err_path_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace labyrinth::testing
