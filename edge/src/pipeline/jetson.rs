//! NVIDIA's GStreamer elements on a Jetson: the CSI camera (nvarguscamerasrc), the conversion
//! engine (nvvidconv), the hardware H.264 encoder (nvv4l2h264enc) and display (nv3dsink). `auto`
//! picks them where the registry has them and falls back to the software elements with a note;
//! naming one that is missing is an error that says how to get it.
use gstreamer as gst;
use gstreamer::prelude::*;

use super::source::make_element;
use crate::config::{DisplaySink, Encoder};
use crate::{Error, Result};

pub fn available(factory: &str) -> bool {
    gst::ElementFactory::find(factory).is_some()
}

fn missing(factory: &str, needed_by: &str, otherwise: &str) -> Error {
    Error::Pipeline(format!(
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

/// The hardware encoder writes byte-stream H.264 into NVMM buffers; the muxers want avc.
const HW_ENCODE: [&str; 3] = ["nvvidconv", "nvv4l2h264enc", "h264parse"];
const HW_DISPLAY: [&str; 2] = ["nvvidconv", "nv3dsink"];

/// The encoder a file output uses; `notes` says when `auto` fell back to software.
pub fn encoder(choice: Encoder, notes: &mut Vec<String>) -> Result<Encoder> {
    match choice {
        Encoder::X264enc => Ok(Encoder::X264enc),
        Encoder::Nvv4l2h264enc => {
            require(&HW_ENCODE, "--encoder nvv4l2h264enc", "Or use --encoder x264enc (software).")?;
            Ok(Encoder::Nvv4l2h264enc)
        }
        Encoder::Auto => match HW_ENCODE.iter().find(|f| !available(f)) {
            None => Ok(Encoder::Nvv4l2h264enc),
            Some(f) => {
                notes.push(format!("no `{f}` here (Jetson hardware encoding): encoding with x264enc on the CPU"));
                Ok(Encoder::X264enc)
            }
        },
    }
}

/// The sink `display://` uses; `notes` says when `auto` fell back to software.
pub fn display(choice: DisplaySink, notes: &mut Vec<String>) -> Result<DisplaySink> {
    match choice {
        DisplaySink::Autovideosink => Ok(DisplaySink::Autovideosink),
        DisplaySink::Nv3dsink => {
            require(&HW_DISPLAY, "--display-sink nv3dsink", "Or use --display-sink autovideosink.")?;
            Ok(DisplaySink::Nv3dsink)
        }
        DisplaySink::Auto => match HW_DISPLAY.iter().find(|f| !available(f)) {
            None => Ok(DisplaySink::Nv3dsink),
            Some(f) => {
                notes.push(format!("no `{f}` here (Jetson display): showing frames with autovideosink"));
                Ok(DisplaySink::Autovideosink)
            }
        },
    }
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

/// `csi://N`: nvarguscamerasrc's NV12 in NVIDIA's memory, converted to BGRx frames we can read.
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
    let to_system = capsfilter(gst::Caps::builder("video/x-raw").field("format", "BGRx").build())?;
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
