// vmm/config/parsers.h — one parse_* function per configuration section (internal to
// vmm/config/; parse_config in config.cc calls them in file order).
//
// Each reads its JSON value into the Config through a json_reader::Section named after
// the section, with the list of keys it allows, and validates what it read. The first
// problem anywhere is left in err and every later parser then does nothing, so the
// error a user sees is the first one in the file. Parsers have no side effects:
// anything that touches the host (files, TAP devices) is pre-flight (preflight.h).
//
// Extending: a new key goes into its section's allow_only() list and reader calls; a new
// section gets a parse_* function here and a line in parse_config().
#pragma once

#include <optional>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "vmm/config/config.h"

namespace labyrinth::vmm {

// parse_vm.cc: the machine itself.
void parse_boot_source(const boost::json::object& obj, Config& cfg,
                       std::optional<ConfigError>& err);
void parse_machine(const boost::json::object& obj, Config& cfg, const ConfigLimits& limits,
                   std::optional<ConfigError>& err);
void parse_serial(const boost::json::object& obj, Config& cfg, std::optional<ConfigError>& err);
// "labyrinth": the pool here, the lnics through parse_lnics.
void parse_labyrinth(const boost::json::object& obj, Config& cfg, std::optional<ConfigError>& err);

// parse_nics.cc: the NICs (nic_settings.h).
void parse_lnics(const boost::json::array& arr, std::vector<LnicSettings>& out,
                 std::optional<ConfigError>& err);
void parse_network_interfaces(const boost::json::array& arr, std::vector<NetworkInterface>& out,
                              std::optional<ConfigError>& err);

// parse_cpu.cc: "cpu-config", a template object or the path of a template file (read by
// parse_config's load step, not here: cfg.cpu_config_path).
void parse_cpu_config(const boost::json::value& v, Config& cfg, std::optional<ConfigError>& err);
// A CPU template object (Firecracker's CpuConfig) named path in messages; PUT /cpu-config's
// body and a template file's text are read by it too.
void parse_cpu_template(const boost::json::object& obj, const std::string& path, CpuTemplate& out,
                        std::optional<ConfigError>& err);

}  // namespace labyrinth::vmm
