//! NVIDIA's GStreamer elements on a Jetson: the CSI camera (nvarguscamerasrc), the conversion
//! engine (nvvidconv), the hardware H.264 encoder (nvv4l2h264enc) and display (nv3dsink). `auto`
//! picks them where the registry has them and falls back to the software elements with a note;
//! naming one that is missing is an error that says how to get it.
use gstreamer as gst;
use gstreamer::prelude::*;

use super::elements::make_element;
use crate::config::{DisplaySink, Encoder};
use crate::{Error, Result};

pub fn available(factory: &str) -> bool {
    gst::ElementFactory::find(factory).is_some()
}

fn missing(factory: &str, needed_by: &str, otherwise: &str) -> Error {
    Error::Setup(format!(
        "{needed_by} needs the GStreamer element `{factory}`, which this machine does not have. \
         NVIDIA's elements come with JetPack on a Jetson (sudo apt install nvidia-l4t-gstreamer; \
         h264parse is in gstreamer1.0-plugins-bad); check with `gst-inspect-1.0 {factory}`. {otherwise}"
    ))
}

fn require(factories: &[&str], needed_by: &str, otherwise: &str) -> Result<()> {
    match factories.iter().find(|f| !available(f)) {
        Some(f) => Err(missing(f, needed_by, otherwise)),
        None => Ok(()),
    }
}

/// NVIDIA's elements for one job, and the software element that does it elsewhere.
struct Job {
    /// All must be registered. The hardware encoder writes byte-stream H.264 into NVMM buffers,
    /// so it needs h264parse before the muxers.
    nvidia: &'static [&'static str],
    software: &'static str,
    flag: &'static str,
    what: &'static str,
}

const ENCODE: Job = Job {
    nvidia: &["nvvidconv", "nvv4l2h264enc", "h264parse"],
    software: "x264enc",
    flag: "--encoder",
    what: "Jetson hardware encoding",
};
const DISPLAY: Job = Job {
    nvidia: &["nvvidconv", "nv3dsink"],
    software: "autovideosink",
    flag: "--display-sink",
    what: "Jetson display",
};

impl Job {
    /// `Some(true)`: NVIDIA's, which must be there; `Some(false)`: software; `None` (auto):
    /// NVIDIA's where the registry has them all, else software, saying so in `notes`.
    fn use_nvidia(&self, asked: Option<bool>, notes: &mut Vec<String>) -> Result<bool> {
        let absent = self.nvidia.iter().find(|f| !available(f));
        match (asked, absent) {
            (Some(false), _) => Ok(false),
            (_, None) => Ok(true),
            (Some(true), Some(f)) => {
                let (flag, software) = (self.flag, self.software);
                Err(missing(f, &format!("{flag} {}", self.nvidia[1]), &format!("Or use {flag} {software}.")))
            }
            (None, Some(f)) => {
                notes.push(format!("no `{f}` here ({}): using {} instead", self.what, self.software));
                Ok(false)
            }
        }
    }
}

/// The encoder a file output uses; `notes` says when `auto` fell back to software.
pub fn encoder(choice: Encoder, notes: &mut Vec<String>) -> Result<Encoder> {
    let asked = match choice {
        Encoder::Auto => None,
        Encoder::X264enc => Some(false),
        Encoder::Nvv4l2h264enc => Some(true),
    };
    Ok(if ENCODE.use_nvidia(asked, notes)? { Encoder::Nvv4l2h264enc } else { Encoder::X264enc })
}

/// The sink `display://` uses; `notes` says when `auto` fell back to software.
pub fn display(choice: DisplaySink, notes: &mut Vec<String>) -> Result<DisplaySink> {
    let asked = match choice {
        DisplaySink::Auto => None,
        DisplaySink::Autovideosink => Some(false),
        DisplaySink::Nv3dsink => Some(true),
    };
    Ok(if DISPLAY.use_nvidia(asked, notes)? { DisplaySink::Nv3dsink } else { DisplaySink::Autovideosink })
}

fn nvmm_caps(format: Option<&str>) -> gst::Caps {
    let mut caps = gst::Caps::builder("video/x-raw").features(["memory:NVMM"]);
    if let Some(format) = format {
        caps = caps.field("format", format);
    }
    caps.build()
}

fn capsfilter(caps: gst::Caps) -> Result<gst::Element> {
    let filter = make_element("capsfilter")?;
    filter.set_property("caps", caps);
    Ok(filter)
}

/// System-memory frames into NVIDIA's buffers (`format`, or whatever the next element wants).
pub fn to_nvmm(format: Option<&str>) -> Result<Vec<gst::Element>> {
    Ok(vec![make_element("nvvidconv")?, capsfilter(nvmm_caps(format))?])
}

/// nvv4l2h264enc and the parser the muxers need after it.
pub fn hardware_encoder(bitrate_kbps: u32) -> Result<Vec<gst::Element>> {
    let mut chain = to_nvmm(Some("NV12"))?;
    let encode = make_element("nvv4l2h264enc")?;
    // NVIDIA's property types differ between releases; their string forms do not.
    encode.set_property_from_str("bitrate", &(u64::from(bitrate_kbps) * 1000).to_string());
    encode.set_property_from_str("insert-sps-pps", "true");
    chain.push(encode);
    chain.push(make_element("h264parse")?);
    Ok(chain)
}

/// What nvvidconv hands the element from a CSI camera: NV12 in system memory, the camera's own
/// format (1.5 bytes a pixel, which the kernels read as they are), not BGRx (4).
pub fn csi_frame_caps() -> gst::Caps {
    gst::Caps::builder("video/x-raw").field("format", "NV12").build()
}

/// `csi://N`: nvarguscamerasrc's NV12 in NVIDIA's memory, copied out as NV12 frames we can read.
pub fn csi_camera(sensor: u32, width: u32, height: u32, framerate: u32) -> Result<Vec<gst::Element>> {
    require(
        &["nvarguscamerasrc", "nvvidconv"],
        &format!("--input csi://{sensor}"),
        "On other machines use a USB camera: --input v4l2:///dev/video0.",
    )?;
    let src = make_element("nvarguscamerasrc")?;
    src.set_property_from_str("sensor-id", &sensor.to_string());
    let camera_caps = gst::Caps::builder("video/x-raw")
        .features(["memory:NVMM"])
        .field("width", width as i32)
        .field("height", height as i32)
        .field("framerate", gst::Fraction::new(framerate as i32, 1))
        .field("format", "NV12")
        .build();
    let to_system = capsfilter(csi_frame_caps())?;
    Ok(vec![src, capsfilter(camera_caps)?, make_element("nvvidconv")?, to_system])
}

/// What to do about an error NVIDIA's elements report in their own terms.
pub fn hint(factory: &str, message: &str) -> Option<&'static str> {
    let message = message.to_ascii_lowercase();
    match factory {
        "nvarguscamerasrc" if message.contains("session") || message.contains("busy") || message.contains("argus") => {
            Some(
                "the CSI camera is busy or not connected: stop the other program using it (one process per \
                 sensor), or `sudo systemctl restart nvargus-daemon` if none is; check the ribbon cable and \
                 the sensor-id (csi://0, csi://1)",
            )
        }
        "nvarguscamerasrc" => {
            Some("the CSI camera did not start: try `sudo systemctl restart nvargus-daemon`, check the sensor-id")
        }
        "nvv4l2h264enc" => Some("this Jetson has no hardware encoder (Orin Nano has none): use --encoder x264enc"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_element_takes_csi_frames_as_they_come() {
        crate::pipeline::init().unwrap();
        let element = gst::ElementFactory::make("cyclegan").build().unwrap();
        let sink = element.static_pad("sink").unwrap().pad_template_caps();
        let csi = csi_frame_caps();
        assert!(sink.can_intersect(&csi), "the element's sink {sink} refuses {csi}: a conversion would run");
    }

    #[test]
    fn auto_falls_back_to_software_with_a_note_and_named_elements_must_exist() {
        gst::init().unwrap();
        if available("nvvidconv") {
            eprintln!("NVIDIA's elements are registered here (a Jetson): no fallback to check");
            return;
        }
        let mut notes = Vec::new();
        assert_eq!(encoder(Encoder::Auto, &mut notes).unwrap(), Encoder::X264enc);
        assert_eq!(display(DisplaySink::Auto, &mut notes).unwrap(), DisplaySink::Autovideosink);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("x264enc"), "{notes:?}");
        let mut quiet = Vec::new();
        assert_eq!(encoder(Encoder::X264enc, &mut quiet).unwrap(), Encoder::X264enc);
        assert!(quiet.is_empty());
        let err = encoder(Encoder::Nvv4l2h264enc, &mut quiet).unwrap_err().to_string();
        assert!(err.contains("nvidia-l4t-gstreamer") && err.contains("--encoder x264enc"), "{err}");
        let err = csi_camera(0, 1280, 720, 30).unwrap_err().to_string();
        assert!(err.contains("nvarguscamerasrc") && err.contains("v4l2://"), "{err}");
    }

    #[test]
    fn busy_camera_and_missing_encoder_errors_get_a_fix() {
        let busy = hint("nvarguscamerasrc", "Failed to create CaptureSession").unwrap();
        assert!(busy.contains("nvargus-daemon") && busy.contains("busy"));
        assert!(hint("nvv4l2h264enc", "Could not open device").unwrap().contains("x264enc"));
        assert_eq!(hint("x264enc", "anything"), None);
    }
}
