#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "devices/bus/bus.h"
#include "devices/irq_test/irq_test_device.h"
#include "devices/legacy/absent_ports.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos.h"
#include "devices/legacy/exit_device.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/ps2_keyboard.h"
#include "guest/abi/ports.h"
#include "tests/support/device_fakes.h"

namespace labyrinth::devices {
namespace {

TEST(ExitDevice, WriteEndsTheVmWithLowByte) {
  test::RecordingControl control;
  ExitDevice dev(control);
  const uint32_t v = 0x1234;
  dev.write(0, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));  // outl
  ASSERT_EQ(control.statuses.size(), 1u);
  EXPECT_EQ(control.statuses[0], 0x34);
  dev.write(1, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 1));
  EXPECT_EQ(control.statuses.size(), 1u) << "only offset 0 is the port";
}

TEST(ExitDevice, IsaDebugExitEndsTheVmWithQemusStatus) {
  test::RecordingControl control;
  ExitDevice dev(control, ExitContract::isa_debug_exit);
  const uint32_t v = 0;
  dev.write(0, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));  // exit(0)
  const uint8_t b = 0x7F;
  dev.write(0, std::span<const uint8_t>(&b, 1));  // outb
  const uint32_t big = 0x1234;
  dev.write(3, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&big), 4));  // any port
  const uint16_t w = 0x80;
  dev.write(2, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&w), 2));
  EXPECT_EQ(control.statuses, (std::vector<int>{1, 0xFF, 0x69, 1}));
  // (0x1234 << 1 | 1) & 0xFF = 0x69; (0x80 << 1 | 1) & 0xFF = 1.
}

TEST(I8042, ResetIsACleanShutdown) {
  test::RecordingControl control;
  I8042 dev(control);
  uint8_t status = 0xFF;
  dev.read(LABYRINTH_PORT_I8042_CMD - I8042::kBase, std::span<uint8_t>(&status, 1));
  EXPECT_EQ(status & 0x03, 0) << "both buffers empty";
  const uint8_t other = 0xAD;
  dev.write(LABYRINTH_PORT_I8042_CMD - I8042::kBase, std::span<const uint8_t>(&other, 1));
  EXPECT_TRUE(control.statuses.empty());
  const uint8_t reset = LABYRINTH_I8042_RESET;
  dev.write(0, std::span<const uint8_t>(&reset, 1));  // data port: not a reset
  EXPECT_TRUE(control.statuses.empty());
  dev.write(LABYRINTH_PORT_I8042_CMD - I8042::kBase, std::span<const uint8_t>(&reset, 1));
  ASSERT_EQ(control.statuses.size(), 1u);
  EXPECT_EQ(control.statuses[0], 0);
}

uint8_t inb(BusDevice& dev, uint64_t offset) {
  uint8_t v = 0xEE;
  dev.read(offset, std::span<uint8_t>(&v, 1));
  return v;
}
void outb(BusDevice& dev, uint64_t offset, uint8_t v) {
  dev.write(offset, std::span<const uint8_t>(&v, 1));
}
uint16_t in16(BusDevice& dev, uint64_t offset) {
  uint16_t v = 0xEEEE;
  dev.read(offset, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 2));
  return v;
}
void out16(BusDevice& dev, uint64_t offset, uint16_t v) {
  dev.write(offset, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 2));
}

TEST(I8042, AnswersTheCommandsLinuxProbesWith) {
  test::RecordingControl control;
  I8042 dev(control);
  constexpr uint64_t kCmd = LABYRINTH_PORT_I8042_CMD - I8042::kBase, kData = 0;
  outb(dev, kCmd, I8042::kCmdReadCtr);
  EXPECT_EQ(inb(dev, kCmd) & I8042::kStatusOutputFull, I8042::kStatusOutputFull);
  EXPECT_EQ(inb(dev, kData), I8042::kInitialCtr);
  EXPECT_EQ(inb(dev, kCmd) & I8042::kStatusOutputFull, 0) << "reading the data empties it";
  outb(dev, kCmd, I8042::kCmdWriteCtr);
  outb(dev, kData, 0x65);
  outb(dev, kCmd, I8042::kCmdReadCtr);
  EXPECT_EQ(inb(dev, kData), 0x65);
  outb(dev, kCmd, I8042::kCmdSelfTest);
  EXPECT_EQ(inb(dev, kData), I8042::kSelfTestPassed);
  outb(dev, kCmd, I8042::kCmdKbdTest);
  EXPECT_EQ(inb(dev, kData), I8042::kKbdTestPassed);
  outb(dev, kData, Ps2Keyboard::kCmdGetId);  // a keyboard command: its ACK waits
  EXPECT_EQ(inb(dev, kCmd) & I8042::kStatusOutputFull, I8042::kStatusOutputFull);
  outb(dev, kCmd, I8042::kCmdReadCtr);
  EXPECT_EQ(inb(dev, kData), 0x65) << "a controller command's answer comes first";
  // Then the keyboard's answer, whole: ACK and the ID (translated: 0x65 has bit 6).
  EXPECT_EQ(inb(dev, kData), Ps2Keyboard::kAck);
  EXPECT_EQ(inb(dev, kData), Ps2Keyboard::kId0);
  EXPECT_EQ(inb(dev, kData), Ps2Keyboard::kId1Translated);
  EXPECT_EQ(inb(dev, kCmd) & I8042::kStatusOutputFull, 0);
  EXPECT_TRUE(control.statuses.empty());
}

TEST(Ps2Keyboard, AnswersEachCommandAsAnAtKeyboard) {
  Ps2Keyboard kbd;
  using V = std::vector<uint8_t>;
  auto send = [&](uint8_t b, bool translate = false) {
    const auto r = kbd.receive(b, translate);
    return V(r.view().begin(), r.view().end());
  };
  EXPECT_EQ(send(0xF2), (V{0xFA, 0xAB, 0x83}));
  EXPECT_EQ(send(0xF2, true), (V{0xFA, 0xAB, 0x41})) << "the controller translates the ID";
  EXPECT_EQ(send(0xED), V{0xFA});
  EXPECT_EQ(send(0x07), V{0xFA}) << "the LEDs";
  EXPECT_EQ(send(0xF3), V{0xFA});
  EXPECT_EQ(send(0x00), V{0xFA}) << "the rate";
  EXPECT_EQ(send(0xF0), V{0xFA});
  EXPECT_EQ(send(0x00), (V{0xFA, 0x02})) << "set 2";
  EXPECT_EQ(send(0xF0), V{0xFA});
  EXPECT_EQ(send(0x00, true), (V{0xFA, 0x41})) << "set 2, translated";
  EXPECT_EQ(send(0xF0), V{0xFA});
  EXPECT_EQ(send(0x03), V{0xFE}) << "only set 2";
  EXPECT_EQ(send(0xF0), V{0xFA});
  EXPECT_EQ(send(0x02), V{0xFA});
  EXPECT_EQ(send(0xED), V{0xFA});
  EXPECT_EQ(send(0xF4), V{0xFA}) << "a command where a parameter was due is a command";
  EXPECT_EQ(send(0x00), V{0xFE}) << "and the parameter is no longer due";
  EXPECT_EQ(send(0xEE), V{0xEE});
  EXPECT_EQ(send(0xFE), V{0xEE}) << "resend: the last byte";
  EXPECT_EQ(send(0xF5), V{0xFA});
  EXPECT_EQ(send(0xF6), V{0xFA});
  EXPECT_EQ(send(0xFF), (V{0xFA, 0xAA}));
  for (const uint8_t unknown : {0x00, 0x55, 0xE0, 0xEC, 0xF1, 0xF7, 0xFB, 0xFD}) {
    EXPECT_EQ(send(unknown), V{0xFE}) << int{unknown};
  }
}

// The parts of Linux's drivers/input/serio/i8042.c that probe the controller at boot,
// polling as the driver does but counting the polls instead of waiting 50 us between
// them: a poll that finds the output buffer empty is time the guest spends waiting.
struct LinuxI8042Probe {
  static constexpr uint64_t kCmd = LABYRINTH_PORT_I8042_CMD - I8042::kBase, kData = 0;
  static constexpr int kTimeoutPolls = 10000;  // I8042_CTL_TIMEOUT
  BusDevice& dev;
  int empty_polls = 0;      // polls of the status that found no byte to read
  bool warned_sis = false;  // "Failed to disable AUX port, but continuing anyway..."

  // __i8042_command: the command, its parameter bytes, then its answer bytes. The AUX
  // loopback's answer must carry "AUX data" in the status.
  bool command(uint8_t cmd, int params, int answers, uint8_t* param, bool aux_loop = false) {
    outb(dev, kCmd, cmd);
    for (int i = 0; i < params; ++i) outb(dev, kData, param[i]);
    for (int i = 0; i < answers; ++i) {
      int polls = 0;
      while ((inb(dev, kCmd) & I8042::kStatusOutputFull) == 0 && polls < kTimeoutPolls) {
        ++polls;
      }
      empty_polls += polls;
      if (polls == kTimeoutPolls) return false;
      if (aux_loop && (inb(dev, kCmd) & I8042::kStatusAuxData) == 0) return false;
      param[i] = inb(dev, kData);
    }
    return true;
  }
  uint8_t read_ctr() {
    uint8_t ctr = 0;
    EXPECT_TRUE(command(I8042::kCmdReadCtr, 0, 1, &ctr));
    return ctr;
  }
  // i8042_toggle_aux: the command, then up to 100 reads of the configuration byte.
  bool toggle_aux(bool on) {
    uint8_t unused = 0;
    if (!command(on ? I8042::kCmdAuxEnable : I8042::kCmdAuxDisable, 0, 0, &unused)) return false;
    for (int i = 0; i < 100; ++i) {
      if (((read_ctr() & I8042::kCtrAuxDisabled) == 0) == on) return true;
    }
    return false;
  }
  // i8042_check_aux up to the IRQ 12 delivery test: true when Linux would go on to
  // that test (which waits up to 250 ms for an interrupt this controller never raises).
  bool check_aux() {
    uint8_t param = 0x5A;
    const bool looped = command(I8042::kCmdWriteAuxOut, 1, 1, &param, /*aux_loop=*/true);
    if (!looped || param != 0x5A) {
      if (!command(I8042::kCmdAuxTest, 0, 1, &param) ||
          (param != 0 && param != 0xFA && param != 0xFF)) {
        return false;
      }
    }
    if (!toggle_aux(false)) warned_sis = true;
    return toggle_aux(true);
  }
};

TEST(I8042, LinuxFindsNoAuxPortWithoutWaiting) {
  test::RecordingControl control;
  I8042 dev(control);
  LinuxI8042Probe linux_probe{dev};
  uint8_t param = 0;
  ASSERT_TRUE(linux_probe.command(I8042::kCmdSelfTest, 0, 1, &param));  // i8042_controller_selftest
  EXPECT_EQ(param, I8042::kSelfTestPassed);
  EXPECT_EQ(linux_probe.read_ctr(), linux_probe.read_ctr()) << "a stable configuration byte";
  EXPECT_FALSE(linux_probe.check_aux()) << "the AUX port is absent";
  EXPECT_FALSE(linux_probe.warned_sis);
  EXPECT_EQ(linux_probe.empty_polls, 0) << "every command answered at once";
}

TEST(I8042, AuxLoopbackAnswersAtOnceAsKeyboardData) {
  test::RecordingControl control;
  I8042 dev(control);
  constexpr uint64_t kCmd = LABYRINTH_PORT_I8042_CMD - I8042::kBase, kData = 0;
  outb(dev, kCmd, I8042::kCmdWriteAuxOut);
  EXPECT_EQ(inb(dev, kCmd) & I8042::kStatusOutputFull, 0) << "the byte has not come yet";
  outb(dev, kData, 0x5A);
  const uint8_t status = inb(dev, kCmd);
  EXPECT_EQ(status & I8042::kStatusOutputFull, I8042::kStatusOutputFull);
  EXPECT_EQ(status & I8042::kStatusAuxData, 0) << "no AUX channel to come back through";
  EXPECT_EQ(inb(dev, kData), 0x5A);
  outb(dev, kData, 0x11);  // the loopback took one byte; this one is for the keyboard
  EXPECT_EQ(inb(dev, kData), Ps2Keyboard::kResend) << "which knows no command 0x11";
  EXPECT_EQ(inb(dev, kCmd) & I8042::kStatusOutputFull, 0);
  outb(dev, kCmd, I8042::kCmdAuxTest);
  const uint8_t aux_test = inb(dev, kData);
  EXPECT_NE(aux_test, 0x00) << "0x00 is 'no error'";
  EXPECT_NE(aux_test, 0xFA) << "0xFA is 'no error' on some notebooks";
  EXPECT_NE(aux_test, 0xFF) << "Linux does not count 0xFF as a failure";
}

TEST(I8042, ConfigurationByteFollowsPortEnableAndDisable) {
  test::RecordingControl control;
  I8042 dev(control);
  LinuxI8042Probe linux_probe{dev};
  EXPECT_TRUE(linux_probe.toggle_aux(false));
  EXPECT_NE(linux_probe.read_ctr() & I8042::kCtrAuxDisabled, 0);
  EXPECT_TRUE(linux_probe.toggle_aux(true));
  EXPECT_EQ(linux_probe.read_ctr() & I8042::kCtrAuxDisabled, 0);
  constexpr uint64_t kCmd = LABYRINTH_PORT_I8042_CMD - I8042::kBase;
  outb(dev, kCmd, I8042::kCmdKbdDisable);
  EXPECT_EQ(linux_probe.read_ctr(), I8042::kInitialCtr | I8042::kCtrKbdDisabled);
  outb(dev, kCmd, I8042::kCmdKbdEnable);
  EXPECT_EQ(linux_probe.read_ctr(), I8042::kInitialCtr);
  EXPECT_EQ(linux_probe.empty_polls, 0);
}

// What a guest's keyboard interrupt handler does: on each IRQ 1, read the status, then
// the byte. Returns the bytes in order; checks one IRQ per byte, none left over.
std::vector<uint8_t> drain_keyboard(I8042& dev, test::CountingIrq& irq) {
  constexpr uint64_t kCmd = LABYRINTH_PORT_I8042_CMD - I8042::kBase, kData = 0;
  std::vector<uint8_t> got;
  int seen = 0;
  while (irq.count.load() > seen && got.size() < 64) {
    ++seen;
    EXPECT_EQ(inb(dev, kCmd) & (I8042::kStatusOutputFull | I8042::kStatusAuxData),
              I8042::kStatusOutputFull)
        << "an IRQ 1 with a keyboard byte waiting";
    got.push_back(inb(dev, kData));
  }
  EXPECT_EQ(inb(dev, kCmd) & I8042::kStatusOutputFull, 0) << "nothing after the last IRQ";
  EXPECT_EQ(irq.count.load(), seen);
  return got;
}

TEST(I8042, CtrlAltDelIsScanCodeSet1WithOneIrq1PerByte) {
  test::RecordingControl control;
  test::CountingIrq irq;
  I8042 dev(control, &irq);
  ASSERT_TRUE(dev.send_ctrl_alt_del());
  EXPECT_EQ(irq.count.load(), 1) << "the first byte at once, the next only once it is read";
  // Translated (the configuration byte at reset): press Ctrl, Alt, Delete, then release
  // them in reverse.
  EXPECT_EQ(drain_keyboard(dev, irq),
            (std::vector<uint8_t>{0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D}));
  EXPECT_TRUE(control.statuses.empty()) << "the keys alone reset nothing";
}

TEST(I8042, CtrlAltDelIsSet2WithoutTranslationAndSilentWithTheIrqOff) {
  test::RecordingControl control;
  test::CountingIrq irq;
  I8042 dev(control, &irq);
  constexpr uint64_t kCmd = LABYRINTH_PORT_I8042_CMD - I8042::kBase, kData = 0;
  outb(dev, kCmd, I8042::kCmdWriteCtr);
  outb(dev, kData, I8042::kCtrKbdInterrupt);  // translation off
  ASSERT_TRUE(dev.send_ctrl_alt_del());
  EXPECT_EQ(drain_keyboard(dev, irq), (std::vector<uint8_t>{0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0,
                                                            0x71, 0xF0, 0x11, 0xF0, 0x14}));
  // The keyboard interrupt disabled (a polling guest): the bytes still come, no IRQ.
  outb(dev, kCmd, I8042::kCmdWriteCtr);
  outb(dev, kData, I8042::kCtrTranslate);
  const int before = irq.count.load();
  ASSERT_TRUE(dev.send_ctrl_alt_del());
  std::vector<uint8_t> polled;
  while ((inb(dev, kCmd) & I8042::kStatusOutputFull) != 0 && polled.size() < 64)
    polled.push_back(inb(dev, kData));
  EXPECT_EQ(polled,
            std::vector<uint8_t>(I8042::kCtrlAltDelSet1.begin(), I8042::kCtrlAltDelSet1.end()));
  EXPECT_EQ(irq.count.load(), before);
}

TEST(I8042, CtrlAltDelWaitsBehindAnAnswerAndRefusesAnOverflow) {
  test::RecordingControl control;
  test::CountingIrq irq;
  I8042 dev(control, &irq);
  constexpr uint64_t kCmd = LABYRINTH_PORT_I8042_CMD - I8042::kBase, kData = 0;
  outb(dev, kCmd, I8042::kCmdSelfTest);  // an answer waits in the buffer
  ASSERT_TRUE(dev.send_ctrl_alt_del());
  ASSERT_TRUE(dev.send_ctrl_alt_del());  // 16 bytes queued: the queue is full
  EXPECT_FALSE(dev.send_ctrl_alt_del()) << "a third would overflow: refused whole";
  EXPECT_EQ(irq.count.load(), 0) << "the buffer is the answer's";
  EXPECT_EQ(inb(dev, kData), I8042::kSelfTestPassed);
  std::vector<uint8_t> twice(I8042::kCtrlAltDelSet1.begin(), I8042::kCtrlAltDelSet1.end());
  twice.insert(twice.end(), I8042::kCtrlAltDelSet1.begin(), I8042::kCtrlAltDelSet1.end());
  EXPECT_EQ(drain_keyboard(dev, irq), twice);
  EXPECT_TRUE(dev.send_ctrl_alt_del()) << "room again once read";
}

// A controller command's answer is what the guest polls for right after the command: it
// goes ahead of a key that waited in the buffer, which comes again, with its IRQ 1, once
// the answer is read.
TEST(I8042, ControllerAnswerGoesAheadOfAWaitingKey) {
  test::RecordingControl control;
  test::CountingIrq irq;
  I8042 dev(control, &irq);
  constexpr uint64_t kCmd = LABYRINTH_PORT_I8042_CMD - I8042::kBase, kData = 0;
  ASSERT_TRUE(dev.send_ctrl_alt_del());
  EXPECT_EQ(irq.count.load(), 1);
  outb(dev, kCmd, I8042::kCmdReadCtr);
  EXPECT_EQ(inb(dev, kData), I8042::kInitialCtr);
  EXPECT_EQ(irq.count.load(), 2) << "the displaced key is delivered again";
  std::vector<uint8_t> keys;
  while ((inb(dev, kCmd) & I8042::kStatusOutputFull) != 0 && keys.size() < 64) {
    keys.push_back(inb(dev, kData));
  }
  EXPECT_EQ(keys,
            std::vector<uint8_t>(I8042::kCtrlAltDelSet1.begin(), I8042::kCtrlAltDelSet1.end()));
  EXPECT_EQ(irq.count.load(), 1 + static_cast<int>(keys.size()));
}

TEST(I8042, FullQueueDropsAKeyboardAnswerWhole) {
  test::RecordingControl control;
  test::CountingIrq irq;
  I8042 dev(control, &irq);
  ASSERT_TRUE(dev.send_ctrl_alt_del());
  ASSERT_TRUE(dev.send_ctrl_alt_del());
  outb(dev, 0, Ps2Keyboard::kCmdGetId);  // three bytes, no room
  EXPECT_EQ(drain_keyboard(dev, irq).size(), 2 * I8042::kCtrlAltDelSet1.size());
  test::CountingIrq irq2;
  I8042 dev2(control, &irq2);
  ASSERT_TRUE(dev2.send_ctrl_alt_del());
  ASSERT_TRUE(dev2.send_ctrl_alt_del());
  for (size_t i = 0; i < 3; ++i) (void)inb(dev2, 0);  // room for three
  outb(dev2, 0, Ps2Keyboard::kCmdGetId);
  std::vector<uint8_t> tail;
  while ((inb(dev2, LABYRINTH_PORT_I8042_CMD - I8042::kBase) & I8042::kStatusOutputFull) != 0 &&
         tail.size() < 64) {
    tail.push_back(inb(dev2, 0));
  }
  ASSERT_EQ(tail.size(), 2 * I8042::kCtrlAltDelSet1.size() - 3 + 3);
  EXPECT_EQ(
      std::vector<uint8_t>(tail.end() - 3, tail.end()),
      (std::vector<uint8_t>{Ps2Keyboard::kAck, Ps2Keyboard::kId0, Ps2Keyboard::kId1Translated}));
  EXPECT_TRUE(control.statuses.empty());
}

// libps2's __ps2_command as atkbd sends it through the controller (Linux's
// drivers/input/serio/libps2.c): each byte written to the data port must be answered by
// an ACK (0xFA) that an IRQ 1 brings, or libps2 waits out 200 ms (a NAK, 0xFE, is
// retried once); then come the command's answer bytes, each with its IRQ 1, or a 500 ms
// wait. Here a byte that no IRQ brings is such a wait: the command fails.
struct LinuxPs2 {
  static constexpr uint64_t kCmd = LABYRINTH_PORT_I8042_CMD - I8042::kBase, kData = 0;
  I8042& dev;
  test::CountingIrq& irq;
  int seen = 0;  // IRQs handled

  // i8042_interrupt: the byte an IRQ 1 brings, if an IRQ came and a byte waits.
  std::optional<uint8_t> next() {
    if (irq.count.load() <= seen) return std::nullopt;
    ++seen;
    if ((inb(dev, kCmd) & I8042::kStatusOutputFull) == 0) return std::nullopt;
    return inb(dev, kData);
  }
  bool send_byte(uint8_t b) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      outb(dev, kData, b);
      const std::optional<uint8_t> ack = next();
      if (!ack || *ack != Ps2Keyboard::kResend) return ack == Ps2Keyboard::kAck;
    }
    return false;
  }
  std::optional<std::vector<uint8_t>> command(uint8_t cmd, std::vector<uint8_t> params,
                                              size_t answers) {
    if (!send_byte(cmd)) return std::nullopt;
    for (const uint8_t p : params) {
      if (!send_byte(p)) return std::nullopt;
    }
    std::vector<uint8_t> got;
    for (size_t i = 0; i < answers; ++i) {
      const std::optional<uint8_t> b = next();
      if (!b) return std::nullopt;
      got.push_back(*b);
    }
    return got;
  }
};

// Linux's atkbd_connect on the port the i8042 driver registers (translated, as at reset):
// atkbd_probe's GET ID, atkbd_reset_state's LEDs and rate, atkbd_activate's enable, and
// atkbd_cleanup's defaults at shutdown. Each is answered at once; a keyboard that
// answered nothing cost the probe 0.4-0.5 s of libps2 timeouts and left no keyboard.
TEST(I8042, LinuxAtkbdProbeFindsAKeyboardAtOnce) {
  test::RecordingControl control;
  test::CountingIrq irq;
  I8042 dev(control, &irq);
  LinuxPs2 ps2{dev, irq};
  const std::optional<std::vector<uint8_t>> id = ps2.command(Ps2Keyboard::kCmdGetId, {}, 2);
  ASSERT_TRUE(id.has_value()) << "libps2 would wait out its timeouts";
  EXPECT_EQ(*id, (std::vector<uint8_t>{0xAB, 0x41})) << "an MF2 keyboard, translated";
  EXPECT_TRUE(ps2.command(Ps2Keyboard::kCmdSetLeds, {0}, 0).has_value());
  EXPECT_TRUE(ps2.command(Ps2Keyboard::kCmdSetRate, {0}, 0).has_value());
  EXPECT_TRUE(ps2.command(Ps2Keyboard::kCmdEnable, {}, 0).has_value());
  EXPECT_TRUE(ps2.command(Ps2Keyboard::kCmdDefaults, {}, 0).has_value());
  // Without translation (i8042.direct) the ID is untranslated, and atkbd_select_set's
  // queries for set 3 are refused, so it stays in set 2.
  constexpr uint64_t kCmd = LinuxPs2::kCmd, kData = LinuxPs2::kData;
  outb(dev, kCmd, I8042::kCmdWriteCtr);
  outb(dev, kData, I8042::kCtrKbdInterrupt);
  EXPECT_EQ(ps2.command(Ps2Keyboard::kCmdGetId, {}, 2), (std::vector<uint8_t>{0xAB, 0x83}));
  EXPECT_FALSE(ps2.command(Ps2Keyboard::kCmdScanSet, {3}, 0).has_value());
  EXPECT_EQ(ps2.command(Ps2Keyboard::kCmdScanSet, {0}, 1), std::vector<uint8_t>{2});
  EXPECT_EQ(irq.count.load(), ps2.seen) << "no IRQ without a byte";
  EXPECT_EQ(inb(dev, kCmd) & I8042::kStatusOutputFull, 0) << "no byte left over";
}

// The PM1a blocks as ACPICA drives them: SCI_EN reads 1, the enable register keeps what
// is written, and only SLP_TYP = 5 with SLP_EN (what Linux's acpi_power_off writes for
// the DSDT's \_S5) ends the VM.
TEST(AcpiPm, S5WithSleepEnableIsAPowerOff) {
  test::RecordingControl control;
  AcpiPm pm(control);
  EXPECT_EQ(in16(pm, 4) & AcpiPm::kSciEn, AcpiPm::kSciEn) << "the machine starts in ACPI mode";
  out16(pm, 2, 0x0120);
  EXPECT_EQ(in16(pm, 2), 0x0120);
  out16(pm, 0, 0xFFFF);  // clearing every status bit
  EXPECT_EQ(in16(pm, 0), 0) << "no fixed event is ever pending";
  // ACPICA writes SLP_TYP first, then SLP_TYP | SLP_EN.
  out16(pm, 4, AcpiPm::kSlpTypS5 << 10);
  EXPECT_TRUE(control.statuses.empty()) << "SLP_TYP alone does not sleep";
  out16(pm, 4, 3 << 10 | AcpiPm::kSlpEn);
  EXPECT_TRUE(control.statuses.empty()) << "S2 is not offered";
  EXPECT_EQ(control.suspends, 0);
  out16(pm, 4, AcpiPm::kSlpTypS5 << 10 | AcpiPm::kSlpEn);
  ASSERT_EQ(control.statuses.size(), 1u);
  EXPECT_EQ(control.statuses[0], 0);
  EXPECT_EQ(control.reasons[0], "guest powered off (ACPI S5)");
  EXPECT_EQ(in16(pm, 4) & AcpiPm::kSlpEn, 0) << "SLP_EN reads back 0";
  // Byte-wide: the high byte alone (SLP_TYP 5, SLP_EN) completes the same write.
  test::RecordingControl control2;
  AcpiPm pm2(control2);
  const uint8_t high = (AcpiPm::kSlpTypS5 << 2) | (AcpiPm::kSlpEn >> 8);
  pm2.write(5, std::span<const uint8_t>(&high, 1));
  EXPECT_EQ(control2.statuses.size(), 1u);
  uint8_t past[4] = {};
  pm2.read(4, past);  // a wide read across the control block's end: the gap at 6-7
  EXPECT_EQ(past[2], 0xFF);
}

// S3 as kvm-unit-tests' s3 drives it: RTC_EN in PM1a_EN, then SLP_TYP 1 | SLP_EN (0x2400)
// suspends (VmControl::request_suspend); at the wake PM1a_STS says WAK_STS | RTC_STS until
// the guest writes them clear.
TEST(AcpiPm, S3SuspendsAndTheWakeShowsInTheStatusRegister) {
  test::RecordingControl control;
  AcpiPm pm(control);
  EXPECT_FALSE(pm.rtc_wake_enabled());
  out16(pm, 2, AcpiPm::kRtcEn);
  EXPECT_TRUE(pm.rtc_wake_enabled());
  out16(pm, 4, AcpiPm::kSlpTypS3 << 10);
  EXPECT_EQ(control.suspends, 0) << "SLP_TYP alone does not sleep";
  out16(pm, 4, 0x2400);
  EXPECT_EQ(control.suspends, 1);
  EXPECT_TRUE(control.statuses.empty()) << "a suspend, not a power-off";
  EXPECT_EQ(in16(pm, 4) & AcpiPm::kSlpEn, 0) << "SLP_EN reads back 0";
  EXPECT_EQ(in16(pm, 0), 0);
  pm.woke(true);
  EXPECT_EQ(in16(pm, 0), AcpiPm::kWakSts | AcpiPm::kRtcSts);
  out16(pm, 0, AcpiPm::kRtcSts);
  EXPECT_EQ(in16(pm, 0), AcpiPm::kWakSts) << "write 1 to clear, bit by bit";
  out16(pm, 0, AcpiPm::kWakSts);
  EXPECT_EQ(in16(pm, 0), 0);
}

// The PM timer: 24 bits at 3.579545 MHz, read 32 bits wide at kBase + 8.
TEST(AcpiPm, PmTimerCountsAt3579545Hz) {
  test::RecordingControl control;
  AcpiPm pm(control);
  const auto timer = [&] {
    uint32_t v = 0;
    pm.read(AcpiPm::kTimerBlock - AcpiPm::kBase,
            std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  };
  // The clock read around both timer reads: their distance is at most t1 - t0.
  const auto t0 = std::chrono::steady_clock::now();
  const uint32_t a = timer();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const uint32_t b = timer();
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_LE(a, 0xFFFFFFu);
  EXPECT_LE(b, 0xFFFFFFu);
  const uint32_t ticks = (b - a) & 0xFFFFFF;
  // At least the 20 ms slept, at most the time between the clock reads (each timer read
  // rounds down: one tick more at most).
  EXPECT_GE(ticks, 20'000u * 3579545 / 1'000'000);
  EXPECT_LE(ticks, static_cast<uint64_t>(ns) * 3579545 / 1'000'000'000 + 1);
}

// Status A's UIP: set during the last 244 us of each second, as QEMU's, so a guest that
// waits for it to rise and fall sees a second begin (kvm-unit-tests' s3).
TEST(Cmos, UpdateInProgressIsSetForTheLast244UsOfEachSecond) {
  using std::chrono::microseconds;
  Cmos::Clock::time_point now = Cmos::Clock::from_time_t(1795925106);
  Cmos cmos([&] { return now; });
  auto reg = [&](uint8_t index) {
    outb(cmos, 0, index);
    return inb(cmos, 1);
  };
  EXPECT_EQ(reg(Cmos::kStatusA), 0x26);
  now += microseconds(1'000'000 - 245);
  EXPECT_EQ(reg(Cmos::kStatusA), 0x26) << "245 us before the second";
  now += microseconds(2);
  EXPECT_EQ(reg(Cmos::kStatusA), 0x26 | Cmos::kStatusAUip) << "243 us before the second";
  EXPECT_EQ(reg(0x00), 0x06) << "still the old second";
  now += microseconds(243);
  EXPECT_EQ(reg(Cmos::kStatusA), 0x26) << "the new second";
  EXPECT_EQ(reg(0x00), 0x07);
}

// The alarm registers keep what is written, 0xC0+ is "don't care"; next_alarm() is the
// first matching whole second after now while status B's AIE is set; alarm_fired() shows
// in status C until it is read.
TEST(Cmos, AlarmMatchesTheNextSecondItNamesOnlyWhileEnabled) {
  const auto base = Cmos::Clock::from_time_t(1795925106);  // 04:05:06 UTC
  Cmos::Clock::time_point now = base + std::chrono::milliseconds(300);
  Cmos cmos([&] { return now; });
  auto set = [&](uint8_t index, uint8_t v) {
    outb(cmos, 0, index);
    outb(cmos, 1, v);
  };
  auto reg = [&](uint8_t index) {
    outb(cmos, 0, index);
    return inb(cmos, 1);
  };
  for (uint8_t r : {0x01, 0x03, 0x05}) set(r, 0xC0);
  EXPECT_EQ(reg(0x01), 0xC0);
  EXPECT_FALSE(cmos.next_alarm().has_value()) << "AIE clear";
  set(Cmos::kStatusB, reg(Cmos::kStatusB) | Cmos::kStatusBAie);
  ASSERT_TRUE(cmos.next_alarm().has_value());
  EXPECT_EQ(*cmos.next_alarm(), base + std::chrono::seconds(1)) << "every second: the next";
  set(0x01, 0x30);  // hh:mm:30
  EXPECT_EQ(*cmos.next_alarm(), base + std::chrono::seconds(24));
  set(0x03, 0x04);  // hh:04:30: the next hour
  set(0x05, 0x05);  // 05:04:30
  EXPECT_EQ(*cmos.next_alarm(), base + std::chrono::seconds(3600 - 36));
  set(0x05, 0x99);  // no hour is 99
  EXPECT_FALSE(cmos.next_alarm().has_value());
  EXPECT_EQ(reg(Cmos::kStatusC), 0);
  cmos.alarm_fired();
  EXPECT_EQ(reg(Cmos::kStatusC), Cmos::kStatusCIrqf | Cmos::kStatusCAf);
  EXPECT_EQ(reg(Cmos::kStatusC), 0) << "cleared by the read";
}

TEST(Cmos, ReadsHostTimeInBcdAndNeverReportsAnUpdate) {
  // 2026-11-29 04:05:06 UTC, a Sunday.
  Cmos cmos([] { return Cmos::Clock::from_time_t(1795925106); });
  auto reg = [&](uint8_t index) {
    outb(cmos, 0, index | 0x80);  // NMI-disable bit set, as Linux does
    return inb(cmos, 1);
  };
  EXPECT_EQ(reg(0x00), 0x06);
  EXPECT_EQ(reg(0x02), 0x05);
  EXPECT_EQ(reg(0x04), 0x04);
  EXPECT_EQ(reg(0x06), 0x01);
  EXPECT_EQ(reg(0x07), 0x29);
  EXPECT_EQ(reg(0x08), 0x11);
  EXPECT_EQ(reg(0x09), 0x26);
  EXPECT_EQ(reg(0x32), 0x20);
  EXPECT_EQ(reg(Cmos::kStatusA) & 0x80, 0) << "update in progress must read clear";
  EXPECT_EQ(reg(Cmos::kStatusB), 0x02) << "24-hour, BCD";
  EXPECT_EQ(reg(Cmos::kStatusD), 0x80) << "time valid";
  // RAM keeps what is written; time registers do not.
  outb(cmos, 0, 0x40);
  outb(cmos, 1, 0xAB);
  EXPECT_EQ(reg(0x40), 0xAB);
  outb(cmos, 0, 0x00);
  outb(cmos, 1, 0x59);
  EXPECT_EQ(reg(0x00), 0x06);
  // Status B keeps interrupt enables but stays in BCD/24-hour format.
  outb(cmos, 0, Cmos::kStatusB);
  outb(cmos, 1, 0x46);
  EXPECT_EQ(reg(Cmos::kStatusB), 0x42);
}

// An interrupt line whose "guest" acks every interrupt it receives.
struct AckingIrq final : IrqLine {
  IrqTestDevice* dev = nullptr;
  std::atomic<int> count{0};
  void trigger() override {
    count.fetch_add(1);
    const uint32_t one = 1;
    dev->write(LABYRINTH_PORT_IRQ_TEST_ACK - LABYRINTH_PORT_IRQ_TEST,
               std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&one), 4));
  }
};

TEST(IrqTestDevice, RaisesAckedInterruptsAtLeastAMillisecondApart) {
  boost::asio::io_context io;
  AckingIrq irq;
  IrqTrain train(io, irq);
  IrqTestDevice dev(train);
  irq.dev = &dev;
  const uint32_t n = 20;
  const auto t0 = std::chrono::steady_clock::now();
  dev.write(0, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&n), 4));
  io.run();  // returns when the train is done
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(irq.count.load(), 20);
  EXPECT_EQ(train.raised(), 20u);
  EXPECT_GE(took, std::chrono::milliseconds(19));
  uint32_t raised = 0;
  dev.read(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&raised), 4));
  EXPECT_EQ(raised, 20u);
}

TEST(IrqTestDevice, WaitsForTheAckBeforeTheNextEdge) {
  boost::asio::io_context io;
  test::CountingIrq irq;  // never acks
  IrqTrain train(io, irq);
  IrqTestDevice dev(train);
  const uint32_t n = 3;
  dev.write(0, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&n), 4));
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_EQ(irq.count.load(), 1) << "a second edge without an ack could merge with the first";
  const uint32_t one = 1;
  dev.write(4, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&one), 4));  // ack
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(irq.count.load(), 2);
}

TEST(IrqTestDevice, CapsUntrustedCounts) {
  boost::asio::io_context io;
  test::CountingIrq irq;
  IrqTrain train(io, irq);
  EXPECT_EQ(train.request(UINT32_MAX), IrqTrain::kMaxPending);
  EXPECT_EQ(train.request(5), 0u) << "nothing more while the cap is reached";
  // Nothing runs unless the event loop does; destroying it cancels the train.
}

// The ports Linux probes at every boot (COM2-4's IER, the Super I/O pairs, DMA page
// register 0x87: the 67 accesses of a Debian 6.1 boot) read all-ones as before, but are
// mapped and counted, so the bus has nothing to warn about; a port outside them still is
// unmapped.
TEST(AbsentPorts, LinuxsProbesReadAllOnesAreCountedAndAreNotUnmapped) {
  Bus pio("pio");
  auto count = std::make_shared<std::atomic<uint64_t>>(0);
  for (const auto& r : kPcAbsentPorts) {
    ASSERT_TRUE(pio.insert(std::make_shared<AbsentPorts>(r.what, count), r.base, r.len)) << r.what;
  }
  for (const uint64_t port : {0x2F9, 0x3E9, 0x2E9, 0x2E, 0x2F, 0x4E, 0x4F, 0x87}) {
    uint8_t v[1] = {0};
    EXPECT_TRUE(pio.read(port, v)) << std::hex << port;
    EXPECT_EQ(v[0], 0xFF) << std::hex << port;
    const uint8_t w[1] = {0x55};
    EXPECT_TRUE(pio.write(port, w)) << std::hex << port;
  }
  EXPECT_EQ(count->load(), 16u);
  EXPECT_EQ(pio.unmapped_accesses(), 0u);
  uint8_t v[2] = {0, 0};  // COM1's neighbour 0x80 (POST code) is not one of them
  EXPECT_FALSE(pio.read(0x80, v));
  EXPECT_EQ(pio.unmapped_accesses(), 1u);
  // None of them may take a port a Labyrinth device answers on.
  for (const uint64_t taken :
       {uint64_t{LABYRINTH_PORT_COM1}, uint64_t{0x60}, uint64_t{0x64}, uint64_t{0x70},
        uint64_t{LABYRINTH_PORT_DEBUG_EXIT}, uint64_t{LABYRINTH_PORT_EXIT},
        uint64_t{LABYRINTH_PORT_FW_CFG}, uint64_t{LABYRINTH_PORT_IRQ_TEST}, uint64_t{0xCF8},
        uint64_t{0xE0}, uint64_t{0x600}}) {
    for (const auto& r : kPcAbsentPorts) {
      EXPECT_FALSE(taken >= r.base && taken < r.base + r.len) << std::hex << taken;
    }
  }
}

}  // namespace
}  // namespace labyrinth::devices
