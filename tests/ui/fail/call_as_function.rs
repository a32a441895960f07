use nnjit::nn;

fn main() {
    // nn.jit(nn.Dense) in Flax; in nnjit the lift is an attribute on the module type.
    let _lifted = nn::jit(nn::Dense::new(4));
}
