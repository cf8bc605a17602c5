#include "client/region_probe.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/region_format.h"

namespace sparsepool::internal {

bool CanMapRegion(const std::string& path, const std::string& uuid) {
  // Read-write, as the data plane maps it: a region this host may only read is not one
  // it can serve from.
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  if (fstat(fd, &st) != 0 || (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) < region_format::kHeaderBytes)) {
    close(fd);  // too short to hold a header (being created): mapping it would fault
    return false;
  }
  // Device-DAX takes only mappings of its alignment (2 MiB or 1 GiB) and no read(2).
  void* header_page = MAP_FAILED;
  size_t mapped = 0;
  for (size_t bytes : {size_t{region_format::kHeaderBytes}, size_t{2} << 20, size_t{1} << 30}) {
    header_page = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (header_page != MAP_FAILED) {
      mapped = bytes;
      break;
    }
    if (S_ISREG(st.st_mode)) break;
  }
  close(fd);
  if (header_page == MAP_FAILED) return false;
  region_format::RegionHeader header;
  std::memcpy(&header, header_page, sizeof(header));
  munmap(header_page, mapped);
  return header.magic == region_format::kMagic && region_format::HeaderChecksum(header) == header.checksum &&
         region_format::UuidToString(header.uuid) == uuid;
}

}  // namespace sparsepool::internal
