#include "client/region_probe.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "common/region_format.h"

namespace sparsepool::internal {

bool CanMapRegion(const std::string& path, const std::string& uuid) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  // Mapped, not read: device-DAX files take no read(2).
  void* header_page = mmap(nullptr, region_format::kHeaderBytes, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (header_page == MAP_FAILED) return false;
  region_format::RegionHeader header;
  std::memcpy(&header, header_page, sizeof(header));
  munmap(header_page, region_format::kHeaderBytes);
  return header.magic == region_format::kMagic && region_format::HeaderChecksum(header) == header.checksum &&
         region_format::UuidToString(header.uuid) == uuid;
}

}  // namespace sparsepool::internal
