// log and exp as the C library computes them, for the aggregator-compatible
// figures. pingstat's geometric mean is Python's math.exp(math.fsum(map(
// math.log, delays)) / n), and Python's math module calls the C library. V8's
// Math.log and Math.exp (fdlibm's) round differently in the last bit, Math.log
// for about one whole number in a hundred and Math.exp for one argument in
// twelve: stats.json's geometric means differed from pingstat's beside it,
// in the two-Synapse room.
// These are Arm's optimized-routines (math/log.c and math/exp.c, with their
// tables), which musl (since 1.1.20; maubot's Docker image is Alpine's) and
// glibc (since 2.28) ship, in the form musl builds for x86-64, without fused
// multiply-add. The builds that fuse (glibc's for x86-64 processors that
// have it, musl's for arm64) round about one geometric mean in 1,400
// otherwise (docs/statistics.md).
// The tables are Arm's (Copyright (c) 2018, Arm Limited; MIT), their bits as hex.

/** The doubles whose bits the hex words give, 16 digits each (one buffer read both ways: the same byte order). */
function doubles(hex: string): Float64Array {
  const words = BigUint64Array.from(hex.trim().split(/\s+/), (word) => BigInt(`0x${word}`));
  return new Float64Array(words.buffer);
}

/** A double's bits, read and written as two 32-bit words. */
const bits = new DataView(new ArrayBuffer(8));

function highWord(x: number): number {
  bits.setFloat64(0, x);
  return bits.getUint32(0);
}

function lowWord(x: number): number {
  bits.setFloat64(0, x);
  return bits.getUint32(4);
}

function fromWords(high: number, low: number): number {
  bits.setUint32(0, high);
  bits.setUint32(4, low);
  return bits.getFloat64(0);
}

/** log's 128 intervals of [0x1.6p-1, 0x1.6p0): per interval 1/c, log(c), and c as a sum of two doubles, at these offsets. */
const LOG_TABLE = doubles(`
 3ff734f0c3e0de9f bfd7cc7f79e69000 3fe61000014fb66b 3c7e026c91425b3c
 3ff713786a2ce91f bfd76feec20d0000 3fe63000034db495 3c8dbfea48005d41
 3ff6f26008fab5a0 bfd713e31351e000 3fe650000d94d478 3c8e7fa786d6a5b7
 3ff6d1a61f138c7d bfd6b85b38287800 3fe67000074e6fad 3c61fcea6b54254c
 3ff6b1490bc5b4d1 bfd65d5590807800 3fe68ffffedf0fae bc7c7e274c590efd
 3ff69147332f0cba bfd602d076180000 3fe6b0000763c5bc bc8ac16848dcda01
 3ff6719f18224223 bfd5a8ca86909000 3fe6d0001e5cc1f6 3c833f1c9d499311
 3ff6524f99a51ed9 bfd54f4356035000 3fe6efffeb05f63e bc7e80041ae22d53
 3ff63356aa8f24c4 bfd4f637c36b4000 3fe710000e869780 3c7bff6671097952
 3ff614b36b9ddc14 bfd49da7fda85000 3fe72ffffc67e912 3c8c00e226bd8724
 3ff5f66452c65c4c bfd445923989a800 3fe74fffdf81116a bc6e02916ef101d2
 3ff5d867b5912c4f bfd3edf439b0b800 3fe770000f679c90 bc67fc71cd549c74
 3ff5babccb5b90de bfd396ce448f7000 3fe78ffffa7ec835 3c81bec19ef50483
 3ff59d61f2d91a78 bfd3401e17bda000 3fe7affffe20c2e6 bc707e1729cc6465
 3ff5805612465687 bfd2e9e2ef468000 3fe7cfffed3fc900 bc808072087b8b1c
 3ff56397cee76bd3 bfd2941b3830e000 3fe7efffe9261a76 3c8dc0286d9df9ae
 3ff54725e2a77f93 bfd23ec58cda8800 3fe81000049ca3e8 3c897fd251e54c33
 3ff52aff42064583 bfd1e9e129279000 3fe8300017932c8f bc8afee9b630f381
 3ff50f22dbb2bddf bfd1956d2b48f800 3fe850000633739c 3c89bfbf6b6535bc
 3ff4f38f4734ded7 bfd141679ab9f800 3fe87000204289c6 bc8bbf65f3117b75
 3ff4d843cfde2840 bfd0edd094ef9800 3fe88fffebf57904 bc89006ea23dcb57
 3ff4bd3ec078a3c8 bfd09aa518db1000 3fe8b00022bc04df bc7d00df38e04b0a
 3ff4a27fc3e0258a bfd047e65263b800 3fe8cfffe50c1b8a bc88007146ff9f05
 3ff4880524d48434 bfcfeb224586f000 3fe8effffc918e43 3c83817bd07a7038
 3ff46dce1b192d0b bfcf474a7517b000 3fe910001efa5fc7 3c893e9176dfb403
 3ff453d9d3391854 bfcea4443d103000 3fe9300013467bb9 3c7f804e4b980276
 3ff43a2744b4845a bfce020d44e9b000 3fe94fffe6ee076f bc8f7ef0d9ff622e
 3ff420b54115f8fb bfcd60a22977f000 3fe96fffde3c12d1 bc7082aa962638ba
 3ff40782da3ef4b1 bfccc00104959000 3fe98ffff4458a0d bc87801b9164a8ef
 3ff3ee8f5d57fe8f bfcc202956891000 3fe9afffdd982e3e bc8740e08a5a9337
 3ff3d5d9a00b4ce9 bfcb81178d811000 3fe9cfffed49fb66 3c3fce08c19be000
 3ff3bd60c010c12b bfcae2c9ccd3d000 3fe9f00020f19c51 bc8a3faa27885b0a
 3ff3a5242b75dab8 bfca45402e129000 3fea10001145b006 3c74ff489958da56
 3ff38d22cd9fd002 bfc9a877681df000 3fea300007bbf6fa 3c8cbeab8a2b6d18
 3ff3755bc5847a1c bfc90c6d69483000 3fea500010971d79 3c88fecadd787930
 3ff35dce49ad36e2 bfc87120a645c000 3fea70001df52e48 bc8f41763dd8abdb
 3ff34679984dd440 bfc7d68fb4143000 3fea90001c593352 bc8ebf0284c27612
 3ff32f5cceffcb24 bfc73cb83c627000 3feab0002a4f3e4b bc69fd043cff3f5f
 3ff3187775a10d49 bfc6a39a9b376000 3feacfffd7ae1ed1 bc823ee7129070b4
 3ff301c8373e3990 bfc60b3154b7a000 3feaefffee510478 3c6a063ee00edea3
 3ff2eb4ebb95f841 bfc5737d76243000 3feb0fffdb650d5b 3c5a06c8381f0ab9
 3ff2d50a0219a9d1 bfc4dc7b8fc23000 3feb2ffffeaaca57 bc79011e74233c1d
 3ff2bef9a8b7fd2a bfc4462c51d20000 3feb4fffd995badc bc79ff1068862a9f
 3ff2a91c7a0c1bab bfc3b08abc830000 3feb7000249e659c 3c8aff45d0864f3e
 3ff293726014b530 bfc31b996b490000 3feb8ffff9871640 3c7cfe7796c2c3f9
 3ff27dfa5757a1f5 bfc2875490a44000 3febafffd204cb4f bc63ff27eef22bc4
 3ff268b39b1d3bbf bfc1f3b9f879a000 3febcfffd2415c45 bc6cffb7ee3bea21
 3ff2539d838ff5bd bfc160c8252ca000 3febeffff86309df bc814103972e0b5c
 3ff23eb7aac9083b bfc0ce7f57f72000 3fec0fffe1b57653 3c8bc16494b76a19
 3ff22a012ba940b6 bfc03cdc49fea000 3fec2ffff1fa57e3 bc64feef8d30c6ed
 3ff2157996cc4132 bfbf57bdbc4b8000 3fec4fffdcbfe424 bc843f68bcec4775
 3ff201201dd2fc9b bfbe370896404000 3fec6fffed54b9f7 3c847ea3f053e0ec
 3ff1ecf4494d480b bfbd17983ef94000 3fec8fffeb998fd5 3c7383068df992f1
 3ff1d8f5528f6569 bfbbf9674ed8a000 3fecb0002125219a bc68fd8e64180e04
 3ff1c52311577e7c bfbadc79202f6000 3feccfffdd94469c 3c8e7ebe1cc7ea72
 3ff1b17c74cb26e9 bfb9c0c3e7288000 3fecefffeafdc476 3c8ebe39ad9f88fe
 3ff19e010c2c1ab6 bfb8a646b372c000 3fed1000169af82b 3c757d91a8b95a71
 3ff18ab07bb670bd bfb78d01b3ac0000 3fed30000d0ff71d 3c89c1906970c7da
 3ff1778a25efbcb6 bfb674f145380000 3fed4fffea790fc4 bc580e37c558fe0c
 3ff1648d354c31da bfb55e0e6d878000 3fed70002edc87e5 bc7f80d64dc10f44
 3ff151b990275fdd bfb4485cdea1e000 3fed900021dc82aa bc747c8f94fd5c5c
 3ff13f0ea432d24c bfb333d94d6aa000 3fedafffd86b0283 3c8c7f1dc521617e
 3ff12c8b7210f9da bfb22079f8c56000 3fedd000296c4739 3c88019eb2ffb153
 3ff11a3028ecb531 bfb10e4698622000 3fedefffe54490f5 3c6e00d2c652cc89
 3ff107fbda8434af bfaffa6c6ad20000 3fee0fffcdabf694 bc7f8340202d69d2
 3ff0f5ee0f4e6bb3 bfadda8d4a774000 3fee2fffdb52c8dd 3c7b00c1ca1b0864
 3ff0e4065d2a9fce bfabbcece4850000 3fee4ffff24216ef 3c72ffa8b094ab51
 3ff0d244632ca521 bfa9a1894012c000 3fee6fffe88a5e11 bc57f673b1efbe59
 3ff0c0a77ce2981a bfa788583302c000 3fee9000119eff0d bc84808d5e0bc801
 3ff0af2f83c636d1 bfa5715e67d68000 3feeafffdfa51744 3c780006d54320b5
 3ff09ddb98a01339 bfa35c8a49658000 3feed0001a127fa1 bc5002f860565c92
 3ff08cabaf52e7df bfa149e364154000 3feef00007babcc4 bc8540445d35e611
 3ff07b9f2f4e28fb bf9e72c082eb8000 3fef0ffff57a8d02 bc4ffb3139ef9105
 3ff06ab58c358f19 bf9a55f152528000 3fef30001ee58ac7 3c8a81acf2731155
 3ff059eea5ecf92c bf963d62cf818000 3fef4ffff5823494 3c8a3f41d4d7c743
 3ff04949cdd12c90 bf9228fb8caa0000 3fef6ffffca94c6b bc6202f41c987875
 3ff038c6c6f0ada9 bf8c317b20f90000 3fef8fffe1f9c441 3c777dd1f477e74b
 3ff02865137932a9 bf8419355daa0000 3fefafffd2e0e37e bc6f01199a7ca331
 3ff0182427ea7348 bf781203c2ec0000 3fefd0001c77e49e 3c7181ee4bceacb1
 3ff008040614b195 bf60040979240000 3fefeffff7e0c331 bc6e05370170875a
 3fefe01ff726fa1a 3f6feff384900000 3ff00ffff465606e bc8a7ead491c0ada
 3fefa11cc261ea74 3f87dc41353d0000 3ff02ffff3867a58 bc977f69c3fcb2e0
 3fef6310b081992e 3f93cea3c4c28000 3ff04ffffdfc0d17 3c97bffe34cb945b
 3fef25f63ceeadcd 3f9b9fc114890000 3ff0700003cd4d82 3c820083c0e456cb
 3feee9c8039113e7 3fa1b0d8ce110000 3ff08ffff9f2cbe8 bc6dffdfbe37751a
 3feeae8078cbb1ab 3fa58a5bd001c000 3ff0b000010cda65 bc913f7faee626eb
 3fee741aa29d0c9b 3fa95c8340d88000 3ff0d00001a4d338 3c807dfa79489ff7
 3fee3a91830a99b5 3fad276aef578000 3ff0effffadafdfd bc77040570d66bc0
 3fee01e009609a56 3fb07598e598c000 3ff110000bbafd96 3c8e80d4846d0b62
 3fedca01e577bb98 3fb253f5e30d2000 3ff12ffffae5f45d 3c9dbffa64fd36ef
 3fed92f20b7c9103 3fb42edd8b380000 3ff150000dd59ad9 3c9a0077701250ae
 3fed5cac66fb5cce 3fb606598757c000 3ff170000f21559a 3c8dfdf9e2e3deee
 3fed272caa5ede9d 3fb7da76356a0000 3ff18ffffc275426 3c910030dc3b7273
 3fecf26e3e6b2ccd 3fb9ab434e1c6000 3ff1b000123d3c59 3c997f7980030188
 3fecbe6da2a77902 3fbb78c7bb0d6000 3ff1cffff8299eb7 bc65f932ab9f8c67
 3fec8b266d37086d 3fbd431332e72000 3ff1effff48ad400 3c937fbf9da75beb
 3fec5894bd5d5804 3fbf0a3171de6000 3ff210000c8b86a4 3c9f806b91fd5b22
 3fec26b533bb9f8c 3fc067152b914000 3ff2300003854303 3c93ffc2eb9fbf33
 3febf583eeece73f 3fc147858292b000 3ff24fffffbcf684 3c7601e77e2e2e72
 3febc4fd75db96c1 3fc2266ecdca3000 3ff26ffff52921d9 3c7ffcbb767f0c61
 3feb951e0c864a28 3fc303d7a6c55000 3ff2900014933a3c bc7202ca3c02412b
 3feb65e2c5ef3e2c 3fc3dfc33c331000 3ff2b00014556313 bc92808233f21f02
 3feb374867c9888b 3fc4ba366b7a8000 3ff2cfffebfe523b bc88ff7e384fdcf2
 3feb094b211d304a 3fc5933928d1f000 3ff2f0000bb8ad96 bc85ff51503041c5
 3feadbe885f2ef7e 3fc66acd2418f000 3ff30ffffb7ae2af bc810071885e289d
 3feaaf1d31603da2 3fc740f8ec669000 3ff32ffffeac5f7f bc91ff5d3fb7b715
 3fea82e63fd358a7 3fc815c0f51af000 3ff350000ca66756 3c957f82228b82bd
 3fea5740ef09738b 3fc8e92954f68000 3ff3700011fbf721 3c8000bac40dd5cc
 3fea2c2a90ab4b27 3fc9bb3602f84000 3ff38ffff9592fb9 bc943f9d2db2a751
 3fea01a01393f2d1 3fca8bed1c2c0000 3ff3b00004ddd242 3c857f6b707638e1
 3fe9d79f24db3c1b 3fcb5b515c01d000 3ff3cffff5b2c957 3c7a023a10bf1231
 3fe9ae2505c7b190 3fcc2967ccbcc000 3ff3efffeab0b418 3c987f6d66b152b0
 3fe9852ef297ce2f 3fccf635d5486000 3ff410001532aff4 3c67f8375f198524
 3fe95cbaeea44b75 3fcdc1bd3446c000 3ff4300017478b29 3c8301e672dc5143
 3fe934c69de74838 3fce8c01b8cfe000 3ff44fffe795b463 3c89ff69b8b2895a
 3fe90d4f2f6752e6 3fcf5509c0179000 3ff46fffe80475e0 bc95c0b19bc2f254
 3fe8e6528effd79d 3fd00e6c121fb800 3ff48fffef6fc1e7 3c9b4009f23a2a72
 3fe8bfce9fcc007c 3fd071b80e93d000 3ff4afffe5bea704 bc94ffb7bf0d7d45
 3fe899c0dabec30e 3fd0d46b9e867000 3ff4d000171027de bc99c06471dc6a3d
 3fe87427aa2317fb 3fd13687334bd000 3ff4f0000ff03ee2 3c977f890b85531c
 3fe84f00acb39a08 3fd1980d67234800 3ff5100012dc4bd1 3c6004657166a436
 3fe82a49e8653e55 3fd1f8ffe0cc8000 3ff530001605277a bc96bfcece233209
 3fe8060195f40260 3fd2595fd7636800 3ff54fffecdb704c bc8902720505a1d7
 3fe7e22563e0a329 3fd2b9300914a800 3ff56fffef5f54a9 3c9bbfe60ec96412
 3fe7beb377dcb5ad 3fd3187210436000 3ff5900017e61012 3c887ec581afef90
 3fe79baa679725c2 3fd377266dec1800 3ff5b00003c93e92 bc9f41080abf0cc0
 3fe77907f2170657 3fd3d54ffbaf3000 3ff5d0001d4919bc bc98812afb254729
 3fe756cadbd6130c 3fd432eee32fe000 3ff5efffe7b87a89 bc947eb780ed6904
`);
const INV_C = 0;
const LOG_C = 1;
const C_HIGH = 2;
const C_LOW = 3;
/** ln 2 as a sum of two doubles. */
const [LN2_HI, LN2_LO] = doubles('3fe62e42fefa3800 3d2ef35793c76730');
/** log1p(r) - r for |r| below 1/256: the coefficients of r^2 to r^6. */
const [A0, A1, A2, A3, A4] = doubles(
  `bfe0000000000001 3fd555555551305b bfcfffffffeb4590 3fc999b324f10111 bfc55575e506c89f`,
);
/** log(1 + r) near 1: the coefficients of r^2 to r^12. */
const [B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10] = doubles(`
 bfe0000000000000 3fd5555555555577 bfcffffffffffdcb 3fc999999995dd0c bfc55555556745a7 3fc24924a344de30
 bfbfffffa4423d65 3fbc7184282ad6ca bfb999eb43b068ff 3fb78182f7afd085 bfb5521375d145cd
`);
/** log's argument near 1 (from 1 - 2^-4 up to 1 + 0x1.09p-4) takes its own polynomial. */
const NEAR_ONE_FROM = 1 - 2 ** -4;
const NEAR_ONE_TO = 1 + 0x109 / 2 ** 12;

/** The natural logarithm of `x`, to the bit as the C library's log. */
export function libmLog(x: number): number {
  if (x >= NEAR_ONE_FROM && x < NEAR_ONE_TO) {
    if (x === 1) return 0;
    const r = x - 1;
    const r2 = r * r;
    const r3 = r * r2;
    let y =
      r3 * (B1! + r * B2! + r2 * B3! + r3 * (B4! + r * B5! + r2 * B6! + r3 * (B7! + r * B8! + r2 * B9! + r3 * B10!)));
    // r squared exactly, as a sum of two doubles: r's high half is exact to square.
    let w = r * 2 ** 27;
    const rHigh = r + w - w;
    const rLow = r - rHigh;
    w = rHigh * rHigh * B0!;
    const high = r + w;
    const low = r - high + w + B0! * rLow * (rHigh + r);
    y += low;
    return y + high;
  }
  let highBits = highWord(x);
  let lowBits = lowWord(x);
  const top = highBits >>> 16;
  if (top < 0x0010 || top >= 0x7ff0) {
    if (x === 0) return -Infinity;
    if (x === Infinity) return x;
    if (top & 0x8000 || (top & 0x7ff0) === 0x7ff0) return Number.NaN;
    // Subnormal: scaled into the normal range, its exponent taken back below.
    highBits = highWord(x * 2 ** 52) - (52 << 20);
    lowBits = lowWord(x * 2 ** 52);
  }
  // x = 2^k z, with z in [0x1.6p-1, 0x1.6p0) and exact; i is z's interval.
  const offset = (highBits - 0x3fe60000) | 0;
  const i = 4 * ((offset >>> 13) & 127);
  const k = offset >> 20;
  const z = fromWords((highBits - (offset & 0xfff00000)) >>> 0, lowBits);
  const r = (z - LOG_TABLE[i + C_HIGH]! - LOG_TABLE[i + C_LOW]!) * LOG_TABLE[i + INV_C]!;
  const w = k * LN2_HI! + LOG_TABLE[i + LOG_C]!;
  const hi = w + r;
  const lo = w - hi + r + k * LN2_LO!;
  const r2 = r * r;
  return lo + r2 * A0! + r * r2 * (A1! + r * A2! + r2 * (A3! + r * A4!)) + hi;
}

/**
 * exp's table: 2^(i/128) for i below 128, as a tail (what the double misses of
 * it) and the double's bits less i << 45, so that adding k << 45 to them gives
 * 2^(k/128) for any k, whose low seven bits are i.
 */
const EXP_TABLE = doubles(`
 0000000000000000 3ff0000000000000 3c9b3b4f1a88bf6e 3feff63da9fb3335
 bc7160139cd8dc5d 3fefec9a3e778061 bc905e7a108766d1 3fefe315e86e7f85
 3c8cd2523567f613 3fefd9b0d3158574 bc8bce8023f98efa 3fefd06b29ddf6de
 3c60f74e61e6c861 3fefc74518759bc8 3c90a3e45b33d399 3fefbe3ecac6f383
 3c979aa65d837b6d 3fefb5586cf9890f 3c8eb51a92fdeffc 3fefac922b7247f7
 3c3ebe3d702f9cd1 3fefa3ec32d3d1a2 bc6a033489906e0b 3fef9b66affed31b
 bc9556522a2fbd0e 3fef9301d0125b51 bc5080ef8c4eea55 3fef8abdc06c31cc
 bc91c923b9d5f416 3fef829aaea92de0 3c80d3e3e95c55af 3fef7a98c8a58e51
 bc801b15eaa59348 3fef72b83c7d517b bc8f1ff055de323d 3fef6af9388c8dea
 3c8b898c3f1353bf 3fef635beb6fcb75 bc96d99c7611eb26 3fef5be084045cd4
 3c9aecf73e3a2f60 3fef54873168b9aa bc8fe782cb86389d 3fef4d5022fcd91d
 3c8a6f4144a6c38d 3fef463b88628cd6 3c807a05b0e4047d 3fef3f49917ddc96
 3c968efde3a8a894 3fef387a6e756238 3c875e18f274487d 3fef31ce4fb2a63f
 3c80472b981fe7f2 3fef2b4565e27cdd bc96b87b3f71085e 3fef24dfe1f56381
 3c82f7e16d09ab31 3fef1e9df51fdee1 bc3d219b1a6fbffa 3fef187fd0dad990
 3c8b3782720c0ab4 3fef1285a6e4030b 3c6e149289cecb8f 3fef0cafa93e2f56
 3c834d754db0abb6 3fef06fe0a31b715 3c864201e2ac744c 3fef0170fc4cd831
 3c8fdd395dd3f84a 3feefc08b26416ff bc86a3803b8e5b04 3feef6c55f929ff1
 bc924aedcc4b5068 3feef1a7373aa9cb bc9907f81b512d8e 3feeecae6d05d866
 bc71d1e83e9436d2 3feee7db34e59ff7 bc991919b3ce1b15 3feee32dc313a8e5
 3c859f48a72a4c6d 3feedea64c123422 bc9312607a28698a 3feeda4504ac801c
 bc58a78f4817895b 3feed60a21f72e2a bc7c2c9b67499a1b 3feed1f5d950a897
 3c4363ed60c2ac11 3feece086061892d 3c9666093b0664ef 3feeca41ed1d0057
 3c6ecce1daa10379 3feec6a2b5c13cd0 3c93ff8e3f0f1230 3feec32af0d7d3de
 3c7690cebb7aafb0 3feebfdad5362a27 3c931dbdeb54e077 3feebcb299fddd0d
 bc8f94340071a38e 3feeb9b2769d2ca7 bc87deccdc93a349 3feeb6daa2cf6642
 bc78dec6bd0f385f 3feeb42b569d4f82 bc861246ec7b5cf6 3feeb1a4ca5d920f
 3c93350518fdd78e 3feeaf4736b527da 3c7b98b72f8a9b05 3feead12d497c7fd
 3c9063e1e21c5409 3feeab07dd485429 3c34c7855019c6ea 3feea9268a5946b7
 3c9432e62b64c035 3feea76f15ad2148 bc8ce44a6199769f 3feea5e1b976dc09
 bc8c33c53bef4da8 3feea47eb03a5585 bc845378892be9ae 3feea34634ccc320
 bc93cedd78565858 3feea23882552225 3c5710aa807e1964 3feea155d44ca973
 bc93b3efbf5e2228 3feea09e667f3bcd bc6a12ad8734b982 3feea012750bdabf
 bc6367efb86da9ee 3fee9fb23c651a2f bc80dc3d54e08851 3fee9f7df9519484
 bc781f647e5a3ecf 3fee9f75e8ec5f74 bc86ee4ac08b7db0 3fee9f9a48a58174
 bc8619321e55e68a 3fee9feb564267c9 3c909ccb5e09d4d3 3feea0694fde5d3f
 bc7b32dcb94da51d 3feea11473eb0187 3c94ecfd5467c06b 3feea1ed0130c132
 3c65ebe1abd66c55 3feea2f336cf4e62 bc88a1c52fb3cf42 3feea427543e1a12
 bc9369b6f13b3734 3feea589994cce13 bc805e843a19ff1e 3feea71a4623c7ad
 bc94d450d872576e 3feea8d99b4492ed 3c90ad675b0e8a00 3feeaac7d98a6699
 3c8db72fc1f0eab4 3feeace5422aa0db bc65b6609cc5e7ff 3feeaf3216b5448c
 3c7bf68359f35f44 3feeb1ae99157736 bc93091fa71e3d83 3feeb45b0b91ffc6
 bc5da9b88b6c1e29 3feeb737b0cdc5e5 bc6c23f97c90b959 3feeba44cbc8520f
 bc92434322f4f9aa 3feebd829fde4e50 bc85ca6cd7668e4b 3feec0f170ca07ba
 3c71affc2b91ce27 3feec49182a3f090 3c6dd235e10a73bb 3feec86319e32323
 bc87c50422622263 3feecc667b5de565 3c8b1c86e3e231d5 3feed09bec4a2d33
 bc91bbd1d3bcbb15 3feed503b23e255d 3c90cc319cee31d2 3feed99e1330b358
 3c8469846e735ab3 3feede6b5579fdbf bc82dfcd978e9db4 3feee36bbfd3f37a
 3c8c1a7792cb3387 3feee89f995ad3ad bc907b8f4ad1d9fa 3feeee07298db666
 bc55c3d956dcaeba 3feef3a2b84f15fb bc90a40e3da6f640 3feef9728de5593a
 bc68d6f438ad9334 3feeff76f2fb5e47 bc91eee26b588a35 3fef05b030a1064a
 3c74ffd70a5fddcd 3fef0c1e904bc1d2 bc91bdfbfa9298ac 3fef12c25bd71e09
 3c736eae30af0cb3 3fef199bdd85529c 3c8ee3325c9ffd94 3fef20ab5fffd07a
 3c84e08fd10959ac 3fef27f12e57d14b 3c63cdaf384e1a67 3fef2f6d9406e7b5
 3c676b2c6c921968 3fef3720dcef9069 bc808a1883ccb5d2 3fef3f0b555dc3fa
 bc8fad5d3ffffa6f 3fef472d4a07897c bc900dae3875a949 3fef4f87080d89f2
 3c74a385a63d07a7 3fef5818dcfba487 bc82919e2040220f 3fef60e316c98398
 3c8e5a50d5c192ac 3fef69e603db3285 3c843a59ac016b4b 3fef7321f301b460
 bc82d52107b43e1f 3fef7c97337b9b5f bc892ab93b470dc9 3fef864614f5a129
 3c74b604603a88d3 3fef902ee78b3ff6 3c83c5ec519d7271 3fef9a51fbc74c83
 bc8ff7128fd391f0 3fefa4afa2a490da bc8dae98e223747d 3fefaf482d8e67f1
 3c8ec3bc41aa2008 3fefba1bee615a27 3c842b94c3a9eb32 3fefc52b376bba97
 3c8a64a931d185ee 3fefd0765b6e4540 bc8e37bae43be3ed 3fefdbfdad9cbe14
 3c77893b4d91cd9d 3fefe7c1819e90d8 3c5305c14160cc89 3feff3c22b8f71f1
`);
const EXP_TAIL = EXP_TABLE.filter((_, j) => j % 2 === 0);
const EXP_SCALES = EXP_TABLE.filter((_, j) => j % 2 === 1);
const EXP_SCALE_HIGH = Uint32Array.from(EXP_SCALES, highWord);
const EXP_SCALE_LOW = Uint32Array.from(EXP_SCALES, lowWord);
const [INV_LN2_N, NEG_LN2_HI_N, NEG_LN2_LO_N, SHIFT] = doubles(
  '40671547652b82fe bf762e42fefa0000 bd0cf79abc9e3b3a 4338000000000000',
);
/** exp(r) - 1 - r for |r| up to ln 2 / 256: the coefficients of r^2 to r^5. */
const [C2, C3, C4, C5] = doubles('3fdffffffffffdbd 3fc555555555543c 3fa55555cf172b91 3f81111167a4d017');
/** The exponent fields of 2^-54 and 512: between them, exp's argument takes no special care. */
const TOP_TINY = 0x3c9;
const TOP_LARGE = 0x408;
/** The exponent fields of 1024 (past it the result overflows or underflows) and of infinities and NaNs. */
const TOP_OUT_OF_RANGE = 0x409;
const TOP_NOT_FINITE = 0x7ff;

/** e to the `x`, to the bit as the C library's exp. */
export function libmExp(x: number): number {
  let top = (highWord(x) >>> 20) & 0x7ff;
  if (top < TOP_TINY || top >= TOP_LARGE) {
    if (top < TOP_TINY) return 1 + x;
    if (top >= TOP_OUT_OF_RANGE) {
      if (x === -Infinity) return 0;
      if (top >= TOP_NOT_FINITE) return 1 + x;
      return x < 0 ? 0 : Infinity;
    }
    // Large: the result's exponent may leave the range, handled after the sum.
    top = 0;
  }
  // exp(x) = 2^(k/128) exp(r), with r within ln 2 / 256 of 0.
  const shifted = INV_LN2_N! * x + SHIFT!;
  const ki = lowWord(shifted);
  const kd = shifted - SHIFT!;
  const r = x + kd * NEG_LN2_HI_N! + kd * NEG_LN2_LO_N!;
  const j = ki & 127;
  const scaleHigh = (EXP_SCALE_HIGH[j]! + (ki << 13)) >>> 0;
  const r2 = r * r;
  const tmp = EXP_TAIL[j]! + r + r2 * (C2! + r * C3!) + r2 * r2 * (C4! + r * C5!);
  if (top === 0) return largeExp(tmp, scaleHigh, EXP_SCALE_LOW[j]!, ki);
  const scale = fromWords(scaleHigh, EXP_SCALE_LOW[j]!);
  return scale + scale * tmp;
}

/** exp's result where its exponent, computed as bits, may have passed the range of a double's. */
function largeExp(tmp: number, scaleHigh: number, scaleLow: number, ki: number): number {
  if ((ki & 0x80000000) === 0) {
    const scale = fromWords((scaleHigh - (1009 << 20)) >>> 0, scaleLow);
    return 2 ** 1009 * (scale + scale * tmp);
  }
  const scale = fromWords((scaleHigh + (1022 << 20)) >>> 0, scaleLow);
  let y = scale + scale * tmp;
  if (y < 1) {
    // Rounded to a double's precision before it is scaled into the subnormals, not twice.
    let lo = scale - y + scale * tmp;
    const hi = 1 + y;
    lo = 1 - hi + y + lo;
    y = hi + lo - 1;
    if (y === 0) y = 0;
  }
  return 2 ** -1022 * y;
}
