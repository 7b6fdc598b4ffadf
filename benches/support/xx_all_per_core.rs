//! Experiment (issue 13, reverted in the next commit): clients, bare relay and echo backends all thread per core; `XX_ALL=1` runs it, `XX_PIN=0` without pinning and CBPF steering.
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn listener(addr: SocketAddr, cbpf: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    if cbpf {
        use std::os::fd::AsRawFd;
        // ld #cpu ; ret a
        let mut code = [
            libc::sock_filter {
                code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
                jt: 0,
                jf: 0,
                k: (libc::SKF_AD_OFF + libc::SKF_AD_CPU) as u32,
            },
            libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_A) as u16,
                jt: 0,
                jf: 0,
                k: 0,
            },
        ];
        let prog = libc::sock_fprog {
            len: 2,
            filter: code.as_mut_ptr(),
        };
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_REUSEPORT_CBPF,
                &prog as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::sock_fprog>() as u32,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(socket.into())
}

fn pin(cpu: usize) {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

pub fn run() -> io::Result<()> {
    let threads = 2;
    let pinned = std::env::var("XX_PIN").map_or(true, |v| v != "0");
    let rounds: usize = std::env::var("XX_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let b0 = listener(lo, pinned)?;
    let baddr = b0.local_addr()?;
    let r0 = listener(lo, pinned)?;
    let raddr = r0.local_addr()?;
    let mut bl = vec![b0];
    let mut rl = vec![r0];
    for _ in 1..threads {
        bl.push(listener(baddr, false)?);
        rl.push(listener(raddr, false)?);
    }
    let mut cmds = Vec::new();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    for (i, (b, r)) in bl.into_iter().zip(rl).enumerate() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<SocketAddr>();
        cmds.push(tx);
        let done = done_tx.clone();
        std::thread::spawn(move || {
            if pinned {
                pin(i);
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .unwrap();
            rt.block_on(async move {
                let b = TcpListener::from_std(b).unwrap();
                let r = TcpListener::from_std(r).unwrap();
                tokio::spawn(async move {
                    loop {
                        let Ok((mut s, _)) = b.accept().await else {
                            continue;
                        };
                        tokio::spawn(async move {
                            let _ = s.set_nodelay(true);
                            let mut buf = vec![0u8; 4096];
                            loop {
                                let Ok(n) = s.read(&mut buf).await else {
                                    return;
                                };
                                if n == 0 {
                                    return;
                                }
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        });
                    }
                });
                tokio::spawn(async move {
                    loop {
                        let Ok((mut c, _)) = r.accept().await else {
                            continue;
                        };
                        tokio::spawn(async move {
                            let Ok(mut s) = TcpStream::connect(baddr).await else {
                                return;
                            };
                            let _ = c.set_nodelay(true);
                            let _ = s.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                        });
                    }
                });
                while let Some(addr) = rx.recv().await {
                    let clients: Vec<_> = (0..2)
                        .map(|_| {
                            tokio::spawn(async move {
                                for _ in 0..500 {
                                    let mut s = TcpStream::connect(addr).await.unwrap();
                                    s.write_all(b"x").await.unwrap();
                                    let mut byte = [0u8; 1];
                                    s.read_exact(&mut byte).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for c in clients {
                        c.await.unwrap();
                    }
                    done.send(()).unwrap();
                }
            });
        });
    }
    let mut res: [(Vec<f64>, Vec<f64>); 2] = [(vec![], vec![]), (vec![], vec![])];
    for _ in 0..rounds {
        for (k, addr) in [baddr, raddr].into_iter().enumerate() {
            let cpu = cpu_seconds();
            let start = Instant::now();
            for c in &cmds {
                c.send(addr).unwrap();
            }
            for _ in 0..threads {
                done_rx.recv().unwrap();
            }
            let secs = start.elapsed().as_secs_f64();
            let total = (threads * 2 * 500) as f64;
            res[k].0.push(total / secs);
            res[k].1.push((cpu_seconds() - cpu) / total * 1e6);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (dr, dc) = (med(&mut res[0].0), med(&mut res[0].1));
    let (rr, rc) = (med(&mut res[1].0), med(&mut res[1].1));
    println!("all per core (pinned+cbpf={pinned}): direct {dr:.0} conn/s {dc:.1} us/conn; bare relay {rr:.0} conn/s {rc:.1} us/conn; ratio {:.3}, cpu ratio {:.3}", rr / dr, rc / dc);
    Ok(())
}
