// Rank 0 and the ranks' agreement on stopping.
#include "cli/ranks.h"

#include <algorithm>
#include <vector>

namespace bb {

std::string ranks_times() {
  const int n = world().size();
  return n > 1 ? std::to_string(n) + " ranks x " : std::string();
}

int agreed_signal(int local) {
  Communicator& c = world();
  if (c.size() == 1) return local;
  // The largest signal number received wins: SIGTERM (15) over SIGINT (2), as either stops.
  std::vector<double> seen(static_cast<size_t>(c.size()), 0.0);
  const double mine = local;
  c.allgather(&mine, sizeof(double), seen.data());
  int agreed = 0;
  for (double s : seen) agreed = std::max(agreed, static_cast<int>(s));
  return agreed;
}

}  // namespace bb
